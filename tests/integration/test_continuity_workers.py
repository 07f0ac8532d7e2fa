"""Continuity across gunicorn workers and a restart, on both endpoints.

5 conversations x 6 turns, a new connection per request, gunicorn restarted
after turn 3: the upstream must see exactly 5 envelopes (account, body key,
both session headers), each identical on all of its turns, and report cached
tokens on every turn after the first.
"""
from __future__ import annotations

import pytest
import requests

from tests.support import LONG_SYSTEM, OPENAI_KEY, auth_headers, gateway_env, stream_events

TURNS = 6


def responses_body(conv: str, turn: int, **extra) -> dict:
    items = [{"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": f"{conv}: question 0"}]}]
    for t in range(1, turn + 1):
        items.append({"type": "message", "role": "assistant",
                      "content": [{"type": "output_text", "text": "Hello from the fake upstream."}]})
        items.append({"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": f"{conv}: question {t}"}]})
    return dict({"model": "gpt-5-codex", "instructions": LONG_SYSTEM, "input": items}, **extra)


def chat_body(conv: str, turn: int, **extra) -> dict:
    messages = [{"role": "system", "content": LONG_SYSTEM},
                {"role": "user", "content": f"{conv}: question 0"}]
    for t in range(1, turn + 1):
        messages.append({"role": "assistant", "content": "Hello from the fake upstream."})
        messages.append({"role": "user", "content": f"{conv}: question {t}"})
    return dict({"model": "gpt-5-codex", "messages": messages}, **extra)


# name, endpoint, body builder, extra headers, stream, expected continuity source
CONVERSATIONS = [
    ("codex-like", "/v1/responses", lambda t: responses_body("A", t, prompt_cache_key="thread-A"),
     {"session-id": "thread-A"}, True, "prompt_cache_key"),
    ("session-header", "/v1/responses", lambda t: responses_body("B", t), {"x-session-id": "ses-B"},
     False, "client_session"),
    ("fingerprint", "/v1/responses", lambda t: responses_body("C", t), {}, True, "conversation"),
    ("opencode-like", "/v1/chat/completions", lambda t: chat_body("D", t, stream=True),
     {"x-session-id": "ses-D"}, True, "client_session"),
    ("chat-fingerprint", "/v1/chat/completions", lambda t: chat_body("E", t), {}, False,
     "conversation"),
]


def envelope(rec: dict) -> tuple:
    h = rec["headers"]
    return (h.get("chatgpt-account-id"), rec["body"]["prompt_cache_key"], h.get("session_id"),
            h.get("session-id"))


def send(gw, endpoint, body, headers, stream):
    body = dict(body)
    if endpoint == "/v1/responses":
        body["stream"] = stream
    h = auth_headers(**headers, Connection="close")
    with requests.Session() as s:  # a new connection for every request
        resp = s.post(gw.url + endpoint, json=body, headers=h, stream=stream, timeout=30)
        assert resp.status_code == 200, resp.text
        if stream:
            stream_events(resp)
        return resp.headers["x-gateway-continuity"]


@pytest.mark.parametrize("retention", [None, "24h"])
def test_five_conversations_six_turns_four_workers_and_a_restart(
        gateway_factory, upstream, tmp_path, retention):
    gw = gateway_factory(gateway_env(upstream, tmp_path), workers=4, threads=4)
    seen_sources: dict[str, set] = {}
    for turn in range(TURNS):
        if turn == TURNS // 2:
            gw.restart()
        for name, endpoint, build, headers, stream, _ in CONVERSATIONS:
            body = build(turn)
            if retention:
                body["prompt_cache_retention"] = retention
            seen_sources.setdefault(name, set()).add(send(gw, endpoint, body, headers, stream))
    records = upstream.requests
    assert len(records) == len(CONVERSATIONS) * TURNS
    by_envelope: dict[tuple, list] = {}
    for rec in records:
        assert rec["status"] == 200
        assert "prompt_cache_retention" not in rec["body"]  # dropped for the Codex backend
        by_envelope.setdefault(envelope(rec), []).append(rec)
    assert len(by_envelope) == len(CONVERSATIONS)
    for recs in by_envelope.values():
        assert len(recs) == TURNS
        env = envelope(recs[0])
        assert env[1] == env[2] == env[3] and env[0] == "acct-main"
        assert recs[0]["cached_tokens"] == 0
        assert all(r["cached_tokens"] > 0 for r in recs[1:]), [r["cached_tokens"] for r in recs]
    assert seen_sources == {c[0]: {c[5]} for c in CONVERSATIONS}
    logs = gw.logs()
    assert "cached_tokens=" in logs and "continuity=conversation" in logs
    for raw_signal in ("thread-A", "ses-B", "ses-D"):  # keys are logged as short hashes only
        assert raw_signal not in logs


def test_retention_is_forwarded_to_openai_api_and_reported_when_dropped(
        gateway_factory, upstream, tmp_path):
    body = responses_body("R", 0, prompt_cache_retention="24h", stream=False)
    codex = gateway_factory(gateway_env(upstream, tmp_path), workers=2)
    resp = requests.post(codex.url + "/v1/responses", json=body, headers=auth_headers(), timeout=30)
    assert resp.status_code == 200
    assert resp.headers["x-gateway-dropped-params"] == "prompt_cache_retention"
    assert "prompt_cache_retention" not in upstream.requests[-1]["body"]

    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_ACCOUNTS_OPENAI_API_KEY=OPENAI_KEY)
    env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"] = ""
    api = gateway_factory(env, workers=2)
    resp = requests.post(api.url + "/v1/responses", json=body, headers=auth_headers(), timeout=30)
    assert resp.status_code == 200, resp.text
    assert "x-gateway-dropped-params" not in resp.headers
    rec = upstream.requests[-1]
    assert rec["flavour"] == "openai" and rec["body"]["prompt_cache_retention"] == "24h"
    assert "session_id" not in rec["headers"]


def test_unsupported_parameter_is_retried_once_without_it(gateway_factory, upstream, tmp_path):
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_UPSTREAM_CODEX_DROP_PARAMS="")
    gw = gateway_factory(env, workers=1)
    body = responses_body("U", 0, prompt_cache_retention="24h", stream=False)
    resp = requests.post(gw.url + "/v1/responses", json=body, headers=auth_headers(), timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-gateway-dropped-params"] == "prompt_cache_retention"
    first, second = upstream.requests[-2:]
    assert first["status"] == 400 and "prompt_cache_retention" in first["body"]
    assert second["status"] == 200 and "prompt_cache_retention" not in second["body"]
    # The worker remembers: the next request goes out without it at once.
    n = len(upstream.requests)
    resp = requests.post(gw.url + "/v1/responses", json=body, headers=auth_headers(), timeout=30)
    assert resp.status_code == 200 and len(upstream.requests) == n + 1
