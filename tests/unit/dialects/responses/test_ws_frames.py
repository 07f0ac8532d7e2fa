"""The Responses WebSocket dialect: frame parsing, error frames, prewarm."""
from __future__ import annotations

import json

import pytest

from gateway.dialects.responses import ws_frames
from gateway.errors import GatewayError

CREATE = {"type": "response.create", "model": "gpt-5.4", "stream": True, "input": []}

PARSE = [
    ("not json", "{nope", 400, "invalid_json"),
    ("array", "[1]", 400, "invalid_frame"),
    ("no type", json.dumps({"model": "m"}), 400, "unsupported_frame_type"),
    ("unknown type", json.dumps({"type": "response.append"}), 400, "unsupported_frame_type"),
    ("generate not bool", json.dumps({**CREATE, "generate": "no"}), 400, "invalid_request"),
    ("binary", b"\x00\x01", 400, "invalid_frame"),
]


@pytest.mark.parametrize("name,text,status,code", PARSE, ids=[p[0] for p in PARSE])
def test_bad_frames_are_400s_that_say_why(name, text, status, code):
    with pytest.raises(GatewayError) as info:
        ws_frames.parse(text)
    assert (info.value.status, info.value.code) == (status, code)
    assert "response.create" in info.value.message or "generate" in info.value.message


def test_request_body_drops_transport_keys_and_keeps_the_rest():
    frame = ws_frames.parse(json.dumps({
        **CREATE, "previous_response_id": "resp_1", "generate": False, "prompt_cache_key": "t",
        "client_metadata": {"turn_id": "u"}, "tools": [{"type": "function", "name": "f"}]}))
    body = ws_frames.request_body(frame, ["full"])
    assert body == {"model": "gpt-5.4", "input": ["full"], "prompt_cache_key": "t",
                    "client_metadata": {"turn_id": "u"},
                    "tools": [{"type": "function", "name": "f"}]}
    assert ws_frames.is_prewarm(frame) and not ws_frames.is_prewarm(CREATE)
    assert ws_frames.turn_id(frame) == "u" and ws_frames.turn_id(CREATE) == ""


def test_frame_headers_restore_the_http_turn_headers():
    meta = {"x-codex-turn-metadata": '{"turn_id":"t1"}', "x-codex-window-id": "th:0",
            "x-codex-ws-stream-request-start-ms": "1", "x-codex-installation-id": "i",
            "turn_id": "t1"}
    frame = {**CREATE, "client_metadata": meta}
    assert ws_frames.frame_headers(frame) == {"x-codex-turn-metadata": '{"turn_id":"t1"}',
                                              "x-codex-window-id": "th:0"}
    bad = {**CREATE, "client_metadata": {"x-codex-window-id": "a\r\nx-evil: 1"}}
    assert ws_frames.frame_headers(bad) == {}
    assert ws_frames.frame_headers({**CREATE, "client_metadata": "x"}) == {}


def test_turn_state_is_echoed_within_its_turn_only():
    state = ws_frames.TurnState()
    state.observe("t1", "ts-9")
    state.observe("t1", None)  # a response without the header keeps the turn's value
    same = {**CREATE, "client_metadata": {"turn_id": "t1"}}
    other = {**CREATE, "client_metadata": {"turn_id": "t2"}}
    assert ws_frames.frame_headers(same, state) == {"x-codex-turn-state": "ts-9"}
    assert ws_frames.frame_headers(other, state) == {}
    assert ws_frames.frame_headers(CREATE, state) == {}  # prewarm: no turn


def test_prewarm_is_a_completed_empty_response():
    events = ws_frames.prewarm_events("resp_gw1", "gpt-5.4", now=1.0)
    assert [e["type"] for e in events] == ["response.created", "response.in_progress",
                                           "response.completed"]
    done = events[-1]["response"]
    assert done["id"] == "resp_gw1" and done["status"] == "completed" and done["output"] == []
    assert done["usage"]["total_tokens"] == 0
    assert ws_frames.new_response_id() != ws_frames.new_response_id()


def test_error_frame_shape():
    err = GatewayError(429, "slow down", code="usage_limit_reached", retry_after=7)
    assert ws_frames.error_frame(err) == {
        "type": "error", "status": 429, "headers": {"retry-after": "7"},
        "error": {"type": "rate_limit_error", "code": "usage_limit_reached",
                  "message": "slow down"}}
    frame = ws_frames.error_frame(GatewayError(400, "bad", code="x", param="model"))
    assert frame["error"]["param"] == "model" and "headers" not in frame


EVENT_ERRORS = [
    ({"type": "error", "code": "stream_truncated", "message": "closed early"}, 502,
     "stream_truncated"),
    ({"type": "error", "code": "rate_limit_exceeded", "message": "m"}, 429, "rate_limit_exceeded"),
    ({"type": "error", "code": "upstream_timeout", "message": "m"}, 504, "upstream_timeout"),
    ({"type": "error", "error": {"type": "invalid_request_error",
                                 "code": "context_length_exceeded", "message": "m"}}, 400,
     "context_length_exceeded"),
    ({"type": "error"}, 502, "upstream_error"),
    (None, 502, "upstream_error"),
]


@pytest.mark.parametrize("data,status,code", EVENT_ERRORS)
def test_in_stream_errors_become_error_frames_with_a_status(data, status, code):
    frame = ws_frames.error_event_frame(data)
    assert frame["type"] == "error" and frame["status"] == status
    assert frame["error"]["code"] == code and frame["error"]["message"]
