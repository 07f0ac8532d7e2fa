"""Claude Code 2.1.332 (pinned, npm) on ``/v1/messages``, straight to gunicorn and through
nginx → gunicorn → fake Codex upstream, with the environment of the deploy guide (docs/deploy/vps.md).

Its default model, no ``--model``: ``claude -p``, then ``claude -p --continue`` twice (the
middle turn a tool round trip: the fake upstream asks for ``Bash``, Claude Code runs it and
sends the result back). The whole session must reach the upstream as ONE envelope (account,
``prompt_cache_key``, session headers), hit the fake's prompt cache on every request after
the first, and replay the reasoning the gateway handed out in thinking signatures.

Claude Code must stay on 127.0.0.1: besides its own switches (clients.py), every proxy
variable points at a trap that records what reaches it, and the test wants it empty.
"""
from __future__ import annotations

import json
import re

from tests.fakes.codex_answers import encrypted_by
from .clients import CLAUDE_EXPORTS, CLAUDE_TURNS, HELLO, Home, ProxyTrap, binary, envelope
from .clients import guide_exports, run

OFFLINE = {"DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
FILE_TEXT = "hello from the project"
# The fake upstream answers a user message holding [[call:NAME ARGS]] with that call.
# (--allowedTools takes several values: it comes after the prompt.)
TOOL_TURN = ("claude -p --continue "
             "'[[call:Bash {\"command\": \"cat hello.txt\", \"description\": \"Show hello.txt\"}]]' "
             "--allowedTools 'Bash(cat hello.txt)'")
CLIENT_REQUEST = '"POST /v1/messages?beta=true HTTP/1.1" 200'  # gunicorn's access log
NGINX_REQUEST = '"POST /v1/messages HTTP/1.1" 200'  # nginx's: no query (the shipped log_format)


def _play_session(base_url: str, tmp_path, trap: ProxyTrap) -> list[str]:
    """The guide's environment and turns, with the tool turn in between; the answers."""
    claude = binary("claude")
    assert CLAUDE_EXPORTS == ["export ANTHROPIC_BASE_URL=https://gateway.example.com",
                              "export ANTHROPIC_AUTH_TOKEN=$CODEX_GATEWAY_KEY"]
    assert CLAUDE_TURNS == ['claude -p "Say hello"', 'claude -p --continue "Say it again"']
    home = Home(tmp_path)
    (home.project / "hello.txt").write_text(FILE_TEXT + "\n")
    env = home.env(**guide_exports(CLAUDE_EXPORTS, base_url), **OFFLINE, **trap.env())
    assert "ANTHROPIC_MODEL" not in env and "ANTHROPIC_API_KEY" not in env
    return [run(turn, claude, home, env) for turn in (CLAUDE_TURNS[0], TOOL_TURN, CLAUDE_TURNS[1])]


def _check_session(answers: list[str], records: list[dict], logs: str, trap: ProxyTrap) -> None:
    # Answers printed: the text, the tool's output as the model saw it, the text again.
    assert [a.strip() for a in answers] == [HELLO, f"Tool result was: {FILE_TEXT}", HELLO], answers
    # One request per model call (turn 2 makes two): no retry, no non-streaming fallback.
    assert [r["path"] for r in records] == ["/backend-api/codex/responses"] * 4, records
    assert all(r["status"] == 200 for r in records)
    assert logs.count(CLIENT_REQUEST) == 4, logs[-3000:]
    # One envelope for the whole session, keyed on Claude Code's session id.
    envelopes = {envelope(r) for r in records}
    assert len(envelopes) == 1, envelopes
    account, key, session_underscore, session_hyphen = envelopes.pop()
    assert None not in (account, key) and session_underscore == session_hyphen == key
    assert "continuity=client_session" in logs
    # The prompt cache serves every request after the first.
    assert records[0]["cached_tokens"] == 0
    assert all(r["cached_tokens"] > 0 for r in records[1:]), [r["cached_tokens"] for r in records]
    # Claude Code's default model, mapped by the catalog's claude-* alias.
    [target] = set(re.findall(r"model=claude-opus-5-5->(\S+)", logs))
    assert not target.startswith("claude") and {r["body"]["model"] for r in records} == {target}
    # The tool round trip: function_call → Claude Code ran Bash → function_call_output.
    bodies = [r["body"] for r in records]
    call, output = bodies[2]["input"][-2:]
    assert call["type"] == "function_call" and call["name"] == "Bash"
    assert json.loads(call["arguments"])["command"] == "cat hello.txt"
    assert output == {"type": "function_call_output", "call_id": call["call_id"],
                      "output": FILE_TEXT}
    # Thinking signatures came back from Claude Code's transcript (also after --continue, a
    # new process): every earlier answer's reasoning is replayed with its encrypted content.
    for n, body in enumerate(bodies):
        replayed = [i["encrypted_content"] for i in body["input"] if i.get("type") == "reasoning"]
        assert replayed == [encrypted_by(r['id'], r['account']) for r in records[:n]], replayed
    # What the gateway must not forward: the deferred placeholder tool, the billing header.
    for body in bodies:
        assert "DeferredToolPlaceholder" not in {t.get("name") for t in body.get("tools", [])}
        assert "x-anthropic-billing-header" not in json.dumps(body["input"])
    assert trap.seen == [], f"Claude Code tried to leave 127.0.0.1: {trap.seen}"


def test_claude_code_session_straight_to_gunicorn(gateway, fresh, tmp_path, trap):
    before = len(gateway.logs())
    answers = _play_session(gateway.url, tmp_path, trap)
    _check_session(answers, fresh.requests, gateway.logs()[before:], trap)


def test_claude_code_session_through_nginx(stack, fresh, tmp_path, trap):
    access_log = stack.nginx.prefix / "access.log"
    before = len(stack.gateway.logs()), len(access_log.read_text()) if access_log.exists() else 0
    answers = _play_session(stack.url, tmp_path, trap)
    _check_session(answers, fresh.requests, stack.gateway.logs()[before[0]:], trap)
    assert access_log.read_text()[before[1]:].count(NGINX_REQUEST) == 4
