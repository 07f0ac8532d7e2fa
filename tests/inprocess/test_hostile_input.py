"""Hostile input, as a curious new user would try it: every case gets a JSON answer
below 500 in the dialect's shape, every response header is printable and bounded,
and the log holds no traceback."""
from __future__ import annotations

import json

import pytest

CHAT = "/v1/chat/completions"
RESP = "/v1/responses"
MSGS = [{"role": "user", "content": "hi"}]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


CASES = [
    # name, path, raw body, expected status
    ("field name with a line break", CHAT,
     json.dumps({"model": "gpt-5-codex", "messages": MSGS, "evil\r\nX-Injected: 1": 1}), 200),
    ("non-ASCII field name", CHAT,
     json.dumps({"model": "gpt-5-codex", "messages": MSGS, "ünïcödé-名前": 1}), 200),
    ("thousands of unknown fields", CHAT,
     json.dumps({"model": "gpt-5-codex", "messages": MSGS,
                 **{f"unknown_field_{i}": i for i in range(5000)}}), 200),
    ("JSON nested 5000 deep", RESP, '{"model":"gpt-5-codex","input":' + nested(5000) + "}", 400),
    ("JSON nested 500 deep", RESP, '{"model":"gpt-5-codex","input":' + nested(500) + "}", 400),
    ("JSON nested 500 deep in chat", CHAT,
     '{"model":"gpt-5-codex","messages":' + nested(500) + "}", 400),
    ("not JSON", RESP, "{model: gpt}", 400),
    ("empty body", RESP, "", 400),
    ("JSON array", RESP, "[1, 2]", 400),
    ("JSON string", CHAT, '"hello"', 400),
    ("invalid UTF-8", RESP, b'{"model": "\xff\xfe", "input": "x"}', 400),
    ("model is a number", RESP, '{"model": 5, "input": "x"}', 400),
    ("model is blank", CHAT, '{"model": "  ", "messages": []}', 400),
    ("input is a number", RESP, '{"model": "gpt-5-codex", "input": 5}', 400),
    ("input items are strings", RESP, '{"model": "gpt-5-codex", "input": ["a"]}', 400),
    ("stream is a string", RESP, '{"model": "gpt-5-codex", "input": "x", "stream": "yes"}', 400),
    ("tools is an object", RESP, '{"model": "gpt-5-codex", "input": "x", "tools": {}}', 400),
    ("retention is bogus", RESP,
     '{"model": "gpt-5-codex", "input": "x", "prompt_cache_retention": "forever"}', 400),
    ("previous_response_id to the Codex backend", RESP,
     '{"model": "gpt-5-codex", "input": "x", "previous_response_id": "resp_1"}', 400),
    ("chat content is a number", CHAT, '{"model": "gpt-5-codex", "messages": [{"role": "user", '
     '"content": 5}]}', 400),
    ("chat role is unknown", CHAT,
     '{"model": "gpt-5-codex", "messages": [{"role": "wizard", "content": "x"}]}', 400),
    ("integer beyond 64 bits", RESP,
     '{"model": "gpt-5-codex", "input": "x", "metadata": {"n": 123456789012345678901234567890}}',
     200),
    ("lone surrogate in text", RESP, '{"model": "gpt-5-codex", "input": "\\ud800 hi"}', 200),
    ("NaN in a field", RESP, '{"model": "gpt-5-codex", "input": "x", "temperature": NaN}', 200),
]


@pytest.mark.parametrize("path, raw, status", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_body(make_client, caplog, path, raw, status):
    gw = make_client()
    caplog.set_level("INFO")
    resp = gw.post(path, raw=raw.encode() if isinstance(raw, str) else raw)
    assert resp.status_code == status, resp.get_data()[:300]
    assert resp.mimetype in ("application/json", "text/event-stream")
    if status >= 400:
        err = resp.get_json()["error"]
        assert err["message"] and err["type"] == "invalid_request_error"
    for name, value in resp.headers.items():
        assert value.isprintable() and value.isascii() and len(value) <= 2048, (name, value[:80])
        assert "\r" not in value and "\n" not in value
    assert "X-Injected" not in resp.headers
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/nope", 404), ("DELETE", RESP, 405), ("GET", CHAT, 405), ("PUT", "/v1/models", 405),
])
def test_unknown_routes_and_methods_are_json(make_client, method, path, status):
    gw = make_client()
    resp = gw.client.open(path, method=method)
    assert resp.status_code == status and resp.get_json()["error"]["code"]


def test_the_404_names_every_route(make_client):
    message = make_client().client.get("/nope").get_json()["error"]["message"]
    for route in ("/v1/responses", "/v1/chat/completions", "/v1/messages", "/v1/models",
                  "/healthz", "/metrics", "/status"):
        assert f"{route}," in message or f"{route}." in message, route
    assert "/static" not in message and "/backend-api/" not in message


def test_wrong_and_missing_keys_are_401_json(make_client):
    gw = make_client()
    for key in ("wrong-key", None):
        resp = gw.post(RESP, {"model": "gpt-5-codex", "input": "x"}, key=key)
        assert resp.status_code == 401 and resp.get_json()["error"]["type"] == \
            "authentication_error"


def test_a_long_session_header_is_hashed_not_echoed(make_client, upstream):
    gw = make_client()
    resp = gw.post(RESP, {"model": "gpt-5-codex", "input": "x"},
                   headers={"session-id": "s" * 5000})
    assert resp.status_code == 200
    sent = upstream.requests[-1]
    assert len(sent["body"]["prompt_cache_key"]) <= 64
