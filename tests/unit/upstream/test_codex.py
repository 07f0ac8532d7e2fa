"""SSE parsing, upstream error reading and the per-upstream body rules."""
from __future__ import annotations

import time

import pytest

from gateway.upstream.codex import bind_turn_state

from gateway import config as config_mod
from gateway.continuity import Continuity
from gateway.errors import GatewayError
from gateway.sse import SSEParser, encode, make_event
from gateway.failures import from_http as parse_failure
from gateway.upstream import profiles_for
from gateway.accounts.pool import Credentials

CFG = config_mod.load(env={})
PROFILES = profiles_for(CFG)
CONT = Continuity("K", "conversation")


def test_parser_handles_split_frames_crlf_and_comments():
    p = SSEParser()
    stream = (b": keep-alive\n\nevent: response.created\r\ndata: {\"type\":\"response.created\"}\r\n\r\n"
              b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\n"
              b"data: not json\n\n" b"data: {\"type\":\"response.completed\"}")
    events = []
    for i in range(0, len(stream), 7):
        events += p.feed(stream[i:i + 7])
    events += p.flush()
    assert [e.type for e in events] == ["response.created", "response.output_text.delta", "",
                                        "response.completed"]
    assert events[1].data["delta"] == "a"
    assert events[2].data is None
    assert events[3].terminal


def test_multiline_data_and_encode_roundtrip():
    p = SSEParser()
    [e] = p.feed(b"data: {\"a\":\ndata: 1}\n\n")
    assert e.data == {"a": 1}
    [e2] = SSEParser().feed(encode({"type": "x", "v": 1}, "x"))
    assert e2.type == "x" and e2.data == {"type": "x", "v": 1}
    made = make_event({"type": "error", "code": "c"})
    assert made.raw.startswith(b"event: error\n") and made.terminal


@pytest.mark.parametrize("status,body,headers,expect", [
    (400, b'{"detail":"Unsupported parameter: prompt_cache_retention"}', {},
     dict(unsupported_param="prompt_cache_retention", message="Unsupported parameter: prompt_cache_retention")),
    (429, b'{"error":{"type":"usage_limit_reached","message":"limit","resets_at":4102444800}}', {},
     dict(code="usage_limit_reached", retry_at=4102444800.0)),
    (429, b'{"error":{"type":"rate_limit_exceeded","message":"try again in 1.5s"}}', {},
     dict(code=None, type="rate_limit_exceeded")),
    (500, b"<html>oops</html>", {}, dict(message="<html>oops</html>")),
    (401, b'{"error":{"message":"expired","code":"token_expired"}}', {}, dict(code="token_expired")),
])
def test_parse_failure_shapes(status, body, headers, expect):
    f = parse_failure(status, body, headers)
    for k, v in expect.items():
        assert getattr(f, k) == v


def test_retry_hints():
    now = time.time()
    assert abs(parse_failure(429, b'{"error":{"message":"x","resets_in_seconds":60}}', {}).retry_at - now - 60) < 2
    assert abs(parse_failure(429, b'{}', {"Retry-After": "7"}).retry_at - now - 7) < 2
    assert abs(parse_failure(429, b'{"error":{"message":"try again in 1.5s"}}', {}).retry_at - now - 1.5) < 1


def test_codex_profile_normalises_and_drops():
    prof = PROFILES["codex"]
    body = {"model": "m", "input": [], "stream": False, "store": True, "include": ["x"],
            "prompt_cache_retention": "24h", "temperature": 0.2, "prompt_cache_key": "client"}
    out, dropped = prof.prepare(body, CONT)
    assert out["stream"] is True and out["store"] is False and out["instructions"] == ""
    assert out["include"] == ["x", "reasoning.encrypted_content"]
    assert out["prompt_cache_key"] == "K"
    assert set(dropped) == {"prompt_cache_retention", "temperature"}
    assert "prompt_cache_retention" not in out and body["stream"] is False  # input untouched


def test_codex_profile_sends_system_as_developer_and_never_a_previous_response_id():
    system = {"type": "message", "role": "system", "content": "be brief"}
    body = {"model": "m", "input": [system], "previous_response_id": "r"}
    out, _ = PROFILES["codex"].prepare(body, CONT)
    assert "previous_response_id" not in out  # the dialect expanded it from the store
    assert out["input"] == [{**system, "role": "developer"}] and system["role"] == "system"


def test_openai_profile_keeps_retention_and_has_no_session_header():
    out, dropped = PROFILES["openai"].prepare(
        {"model": "m", "input": [], "prompt_cache_retention": "24h"}, CONT)
    assert out["prompt_cache_retention"] == "24h" and dropped == []
    headers = PROFILES["openai"].headers(Credentials("sk"), {}, CONT)
    assert "session_id" not in headers and headers["Authorization"] == "Bearer sk"


def test_codex_headers_one_value_and_forwarding():
    client = {"session_id": "client-sid", "x-codex-turn-state": bind_turn_state("ts", "acct"),
              "version": "0.169.0",
              "x-client-request-id": "r", "Authorization": "Bearer client-key", "cookie": "c"}
    h = PROFILES["codex"].headers(Credentials("tok", "acct"), client, CONT)
    assert h["session_id"] == h["session-id"] == "K"
    assert h["Authorization"] == "Bearer tok" and h["chatgpt-account-id"] == "acct"
    assert h["x-codex-turn-state"] == "ts" and h["version"] == "0.171.0"
    assert "cookie" not in h and h["originator"] == "codex_cli_rs"
    # Another account's turn state is not forwarded.
    other = {**client, "x-codex-turn-state": bind_turn_state("ts", "other")}
    assert "x-codex-turn-state" not in PROFILES["codex"].headers(Credentials("tok", "acct"),
                                                                 other, CONT)


def test_learned_unsupported_param_is_dropped_next_time():
    prof = profiles_for(CFG)["openai"]
    prof.learn_unsupported("service_tier")
    out, dropped = prof.prepare({"model": "m", "input": [], "service_tier": "flex"}, CONT)
    assert "service_tier" not in out and dropped == ["service_tier"]


def test_error_body_shape():
    err = GatewayError(429, "slow down", code="x", retry_after=5)
    assert err.body() == {"error": {"message": "slow down", "type": "rate_limit_error",
                                    "param": None, "code": "x"}}
    assert err.headers() == {"Retry-After": "5"}
