"""Gemini CLI 0.61.0 (pinned, npm) on the Gemini dialect, straight to gunicorn and through
nginx → gunicorn → fake Codex upstream, with the environment docs/clients/gemini-cli.md gives.

Its default model, no ``-m``: ``gemini -p``, then ``gemini -p --resume latest`` twice (the
middle turn a tool round trip: the fake upstream asks for ``read_file``, Gemini CLI reads the
file and sends the result back; the last turn with ``-o json`` for the token stats). Before
every turn Gemini CLI asks its router (``gemini-3.5-flash-lite:generateContent``, a JSON
schema answer) which model to use; the fake answers "complex", so the turns go to the pro
tier. The main conversation must reach the upstream as ONE envelope, hit the prompt cache on
every main request after the first, and the router calls must stay out of that envelope.

Gemini CLI must stay on 127.0.0.1: usage statistics, telemetry and updates off in its
settings, every proxy variable pointed at a trap that must stay empty.
"""
from __future__ import annotations

import json

from tests.fakes.codex_answers import encrypted_by
from tests.support import CLIENT_KEY

from .clients import HELLO, Home, ProxyTrap, binary, envelope, run

FILE_TEXT = "hello from the project"
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False,
                "maxAttempts": 1},
}
ROUTER = '{"complexity_reasoning": "Needs care.", "complexity_score": 95}'
TURNS = ['gemini -p "Say hello"',
         """gemini -p '[[call:read_file {"file_path": "hello.txt"}]]' --resume latest""",
         'gemini -p "Say it again" --resume latest -o json']
MAIN = "gemini-3.1-pro-preview-customtools"  # what the router's "complex" picks
ROUTER_MODEL = "gemini-3.5-flash-lite"
MAIN_REQUEST = f'"POST /v1beta/models/{MAIN}:streamGenerateContent HTTP/1.1" 200'  # no query: the shipped log_format


def _play_session(base_url: str, tmp_path, trap: ProxyTrap) -> list[str]:
    gemini = binary("gemini")
    home = Home(tmp_path)
    (home.project / "hello.txt").write_text(FILE_TEXT + "\n")
    home.write("~/.gemini/settings.json", json.dumps(SETTINGS))
    env = home.env(GOOGLE_GEMINI_BASE_URL=base_url, GEMINI_API_KEY=CLIENT_KEY, **trap.env())
    return [run(turn, gemini, home, env) for turn in TURNS]


def _check_session(answers: list[str], records: list[dict], logs: str, trap: ProxyTrap) -> None:
    assert answers[0].strip() == HELLO
    assert answers[1].strip() == f"Tool result was: {FILE_TEXT}", answers[1]
    stats = json.loads(answers[2])
    assert stats["response"] == HELLO
    # A router call before each turn, then the turn's model calls (turn 2 makes two).
    routers = [r for r in records if r["body"].get("text", {}).get("format")]
    mains = [r for r in records if r not in routers]
    assert len(routers) == 3 and len(mains) == 4, [r["body"]["model"] for r in records]
    assert all(r["status"] == 200 for r in records)
    # The catalog's aliases: the pro tier on the main model, flash-lite on the small one.
    assert f"model={MAIN}->gpt-5.5" in logs and f"model={ROUTER_MODEL}->gpt-5.4-mini" in logs
    assert {r["body"]["model"] for r in mains} == {"gpt-5.5"}
    assert {r["body"]["model"] for r in routers} == {"gpt-5.4-mini"}
    # One envelope for the main conversation, known by its prefix; the router has its own.
    envelopes = {envelope(r) for r in mains}
    assert len(envelopes) == 1, _heads(mains)
    account, key, session_underscore, session_hyphen = envelopes.pop()
    assert None not in (account, key) and session_underscore == session_hyphen == key
    assert key not in {r["body"]["prompt_cache_key"] for r in routers}
    assert "continuity=conversation" in logs
    # The prompt cache serves every main request after the first; Gemini CLI sees it.
    assert mains[0]["cached_tokens"] == 0
    assert all(r["cached_tokens"] > 0 for r in mains[1:]), [r["cached_tokens"] for r in mains]
    # (-o json: the turn's usageMetadata per modelVersion, which names the model asked for)
    assert stats["stats"]["models"][MAIN]["tokens"]["cached"] == mains[-1]["cached_tokens"]
    # The tool round trip: function_call -> Gemini CLI ran read_file -> function_call_output.
    call, output = mains[2]["body"]["input"][-2:]
    assert call["type"] == "function_call" and call["name"] == "read_file"
    assert json.loads(call["arguments"]) == {"file_path": "hello.txt"}
    assert output == {"type": "function_call_output", "call_id": call["call_id"],
                      "output": FILE_TEXT + "\n"}
    # The reasoning of the call's answer came back in the functionCall's thoughtSignature;
    # the first answer's, which Gemini CLI does not carry, is put back by prefix repair
    # (docs/cache-breaks.md), so the upstream sees every earlier answer as it made it.
    replayed = [i["encrypted_content"] for i in mains[2]["body"]["input"]
                if i.get("type") == "reasoning"]
    assert replayed == [encrypted_by(m['id'], m['account']) for m in mains[:2]], replayed
    # After --resume, Gemini CLI 0.61 sends that function response twice: one reaches upstream.
    outputs = [i for i in mains[3]["body"]["input"] if i.get("type") == "function_call_output"]
    assert [o["call_id"] for o in outputs] == [call["call_id"]]
    assert CLIENT_KEY not in logs  # the key came in x-goog-api-key: never logged
    assert trap.seen == [], f"Gemini CLI tried to leave 127.0.0.1: {trap.seen}"


def _heads(mains: list[dict]) -> list:
    """What the conversation key is derived from, per main request, where it differs from
    the first request's (a failure once had two keys; this says which turn, and why)."""
    def head(r):
        body = r["body"]
        first = next((i for i in body.get("input", []) if i.get("role") == "user"), None)
        return json.dumps([body.get("model"), body.get("instructions"), first])
    base = head(mains[0])
    out = []
    for n, r in enumerate(mains):
        text = head(r)
        at = next((k for k, (a, b) in enumerate(zip(base, text)) if a != b),
                  None if len(base) == len(text) else min(len(base), len(text)))
        out.append((n, envelope(r)[1], None if at is None else text[max(0, at - 80):at + 160]))
    return out


def test_gemini_cli_session_straight_to_gunicorn(gateway, fresh, tmp_path, trap):
    fresh.configure(schema_reply=ROUTER)
    before = len(gateway.logs())
    answers = _play_session(gateway.url, tmp_path, trap)
    _check_session(answers, fresh.requests, gateway.logs()[before:], trap)


def test_gemini_cli_session_through_nginx(stack, fresh, tmp_path, trap):
    fresh.configure(schema_reply=ROUTER)
    access_log = stack.nginx.prefix / "access.log"
    before = len(stack.gateway.logs()), len(access_log.read_text()) if access_log.exists() else 0
    answers = _play_session(stack.url, tmp_path, trap)
    _check_session(answers, fresh.requests, stack.gateway.logs()[before[0]:], trap)
    assert access_log.read_text()[before[1]:].count(MAIN_REQUEST) == 4
