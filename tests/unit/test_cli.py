"""`codex-gateway keys create | list` (client and admin keys): the key is printed once and
stored nowhere."""
from __future__ import annotations

import os
import stat

import pytest

from gateway import cli
from gateway.auth import ClientKeys, hash_key, key_id


@pytest.fixture
def state(state_env):
    return state_env


def test_create_prints_the_key_once_and_stores_its_digest(state, capsys):
    assert cli.main(["keys", "create", "--name", "my laptop"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("cgw-") and key not in err
    assert key_id(key) in err and hash_key(key) in err and "shown only this once" in err
    text = (state / "client_keys").read_text()
    assert key not in text and text == f"my-laptop {hash_key(key)}\n"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state / "client_keys").st_mode) == 0o600
    assert ClientKeys((), state / "client_keys").check(f"Bearer {key}") == key_id(key)


def test_list_shows_names_and_ids_and_hashes_an_old_file(state, capsys, monkeypatch):
    state.mkdir()
    (state / "client_keys").write_text("old plain-key\n")
    monkeypatch.setenv("CODEX_GATEWAY_AUTH_CLIENT_KEYS", f"cfg-key,{hash_key('cfg-digest')}")
    assert cli.main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [f"old\t{key_id('plain-key')}", f"config\t{key_id('cfg-key')}",
                                f"config\t{key_id('cfg-digest')}"]
    assert "plain-key" not in (state / "client_keys").read_text()


def test_list_without_any_key_prints_nothing(state, capsys):
    """The systemd unit's ExecStartPre refuses to start on an empty `keys list`."""
    assert cli.main(["keys", "list"]) == 0
    assert capsys.readouterr().out == ""


def test_config_flag_is_read_without_touching_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CODEX_GATEWAY_CONFIG", raising=False)
    keys = tmp_path / "from-config-keys"
    keys.write_text(f"named-in-toml {hash_key('k')}\n")
    conf = tmp_path / "gateway.toml"
    conf.write_text(f'[auth]\nkeys_file = "{keys}"\n')
    assert cli.main(["--config", str(conf), "keys", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"named-in-toml\t{key_id('k')}"]
    assert "CODEX_GATEWAY_CONFIG" not in os.environ


def test_keys_create_admin_goes_to_its_own_file(state, capsys):
    assert cli.main(["keys", "create", "--admin", "--name", "prometheus"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert "admin key" in err and key not in err
    assert (state / "admin_keys").read_text() == f"prometheus {hash_key(key)}\n"
    assert not (state / "client_keys").exists()
    assert cli.main(["keys", "list"]) == 0
    assert capsys.readouterr().out == ""  # the unit's ExecStartPre still sees no client key
    assert cli.main(["keys", "list", "--admin"]) == 0
    assert capsys.readouterr().out == f"prometheus\t{key_id(key)}\n"
