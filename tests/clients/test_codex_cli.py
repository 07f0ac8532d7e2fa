"""Codex CLI 0.169.0 (pinned, npm) through nginx → gunicorn → fake Codex upstream, with
the provider configuration of the README's deploy guide."""
from __future__ import annotations

from .clients import CODEX_TURNS, HELLO, Home, binary, envelope, guide_file, run

# Test-only settings on top of the guide's file (see clients.py).
QUIET = 'check_for_update_on_startup = false\n'
NO_ANALYTICS = '\n[analytics]\nenabled = false\n'


def test_codex_exec_then_resume_keeps_one_envelope_and_hits_the_cache(stack, fresh, tmp_path):
    codex = binary("codex")
    home = Home(tmp_path)
    config = guide_file("~/.codex/config.toml", stack.url + "/v1")
    home.write("~/.codex/config.toml", QUIET + config + NO_ANALYTICS)
    env = home.env()
    assert CODEX_TURNS == ['codex exec "Say hello"', 'codex exec resume --last "Say it again"']

    first = run(CODEX_TURNS[0], codex, home, env)
    second = run(CODEX_TURNS[1], codex, home, env)
    assert HELLO in first and HELLO in second

    records = fresh.requests
    assert [r["path"] for r in records] == ["/backend-api/codex/responses"] * 2, records
    assert all(r["status"] == 200 for r in records)
    one, two = (envelope(r) for r in records)
    assert one == two and None not in one, (one, two)
    account, key, session_underscore, session_hyphen = one
    assert session_underscore == session_hyphen == key
    # Turn 2 is the resumed conversation (turn 1 in its input) and hits the cache.
    assert "Say hello" in str(records[1]["body"]["input"])
    assert records[0]["cached_tokens"] == 0 and records[1]["cached_tokens"] > 0
    # It went through nginx (its access log) with Codex's own headers.
    access = (stack.nginx.prefix / "access.log").read_text()
    assert access.count('"POST /v1/responses HTTP/1.1" 200') >= 2
    assert "codex_exec/0.169.0" in records[0]["headers"].get("User-Agent", "") or \
        "codex_exec" in records[0]["headers"].get("originator", "")
    assert "continuity=prompt_cache_key" in stack.gateway.logs()
