"""Codex CLI, the tidiest client, through the gateway with cache-break detection and
repair on (the defaults): a session with a tool turn and a resumed turn, over HTTP
and over the WebSocket, has no cache break and nothing repaired (docs/cache-breaks.md)."""
from __future__ import annotations

import pytest

from .clients import CODEX_TURNS, CODEX_VERSIONS, codex_binary
from .test_codex_cli import TOOL_TURN, codex_home, session


@pytest.mark.parametrize("mode", ["http", "builtin"])
def test_codex_cli_turns_append_and_are_sent_as_they_are(stack, fresh, tmp_path, mode):
    home, env = codex_home(tmp_path, mode, stack.url + "/v1")
    before = len(stack.gateway.logs())
    session(codex_binary(list(CODEX_VERSIONS)[-1]), home, env, [TOOL_TURN, *CODEX_TURNS[1:]])
    lines = [line for line in stack.gateway.logs()[before:].splitlines()
             if " request dialect=responses " in line]
    assert len(lines) >= 3, lines  # the call, its follow-up, the resumed turn
    assert not [line for line in lines if "cache_break=" in line or "repaired=" in line]
    assert all(r["status"] == 200 for r in fresh.requests)
