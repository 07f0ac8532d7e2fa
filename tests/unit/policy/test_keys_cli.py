"""`codex-gateway keys create | update | revoke | list` with a policy: flags checked first,
the policy kept beside the digest."""
from __future__ import annotations

from gateway.policy.store import FilePolicies


def test_keys_create_update_revoke_and_list_keep_the_policy_beside_the_digest(state_env,
                                                                              capsys):
    import json as _json

    from gateway import cli
    from gateway.auth import key_id

    assert cli.main(["keys", "create", "--name", "partner", "--models", "gpt-5.4-high,gpt-5.4",
                     "--tokens-per-day", "20k", "--requests-per-minute", "30",
                     "--concurrency", "2", "--expires", "30d"]) == 0
    key = capsys.readouterr().out.strip()
    ident = key_id(key)
    stored = _json.loads((state_env / "client_keys.policy.json").read_text())
    assert key not in str(stored) and set(stored) == {ident}
    assert stored[ident]["models"] == ["gpt-5.4"]  # a suffix resolved through the catalog
    assert stored[ident]["tokens_per_day"] == 20000 and stored[ident]["concurrency"] == 2
    assert cli.main(["keys", "update", "partner", "--tokens-per-day", "none", "--show-quota",
                     "--models", "all"]) == 0
    assert "holds from the next request" in capsys.readouterr().out
    policy = FilePolicies(state_env / "client_keys.policy.json").get(ident)
    assert policy.tokens_per_day is None and policy.show_quota and policy.models == ()
    assert policy.requests_per_minute == 30  # untouched flags stay
    assert cli.main(["keys", "revoke", ident]) == 0
    assert cli.main(["keys", "list", "--json"]) == 0
    (row,) = _json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert (row["id"], row["name"], row["status"]) == (ident, "partner", "revoked")
    assert row["limits"]["requests_per_minute"]["limit"] == 30
    assert row["today"]["requests"] == 0
    assert cli.main(["keys", "list"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"partner\t{ident}\trevoked\tREVOKED")


def test_keys_flags_are_checked_before_anything_is_written(state_env, capsys):
    from gateway import cli

    assert cli.main(["keys", "create", "--name", "x", "--models", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert cli.main(["keys", "create", "--name", "x", "--expires", "soon"]) == 2
    assert not (state_env / "client_keys").exists()
    assert cli.main(["keys", "update", "nobody", "--concurrency", "2"]) == 2
    assert "no client key named 'nobody'" in capsys.readouterr().err
