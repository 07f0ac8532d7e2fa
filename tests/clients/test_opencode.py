"""OpenCode 1.18.33 (pinned, npm) through nginx → gunicorn → fake Codex upstream, with the
provider configuration of the deploy guide (docs/deploy/vps.md) (/v1/chat/completions)."""
from __future__ import annotations

from .clients import HELLO, OPENCODE_TURNS, Home, binary, envelope, guide_file, run

# Test-only: no models.dev fetch, no self-update, no registry (see clients.py).
OFFLINE = {"OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1",
           "npm_config_offline": "true"}


def test_opencode_run_then_continue_keeps_one_envelope(stack, fresh, tmp_path):
    opencode = binary("opencode")
    home = Home(tmp_path)
    home.write("~/.config/opencode/opencode.json",
               guide_file("~/.config/opencode/opencode.json", stack.url + "/v1"))
    env = home.env(**OFFLINE)
    assert OPENCODE_TURNS == ['opencode run "Say hello"', 'opencode run --continue "Say it again"']

    first = run(OPENCODE_TURNS[0], opencode, home, env)
    second = run(OPENCODE_TURNS[1], opencode, home, env)
    assert first.strip().splitlines()[0] == HELLO, first
    assert second.strip().splitlines()[0] == HELLO, second

    records = fresh.requests
    # A title request and a turn, then the continued turn: all of one session.
    assert len(records) >= 3 and all(r["status"] == 200 for r in records), records
    envelopes = {envelope(r) for r in records}
    assert len(envelopes) == 1 and None not in next(iter(envelopes)), envelopes
    assert records[-1]["cached_tokens"] > 0
    assert "Say hello" in str(records[-1]["body"]["input"])
    access = (stack.nginx.prefix / "access.log").read_text()
    assert access.count('"POST /v1/chat/completions HTTP/1.1" 200') >= len(records)
    logs = stack.gateway.logs()
    assert "dialect=chat" in logs and "continuity=client_session" in logs
