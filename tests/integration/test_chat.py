"""/v1/chat/completions through real gunicorn, driven by the real OpenAI Python SDK."""
from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import requests

from tests.support import CLIENT_KEY, LONG_SYSTEM, auth_headers, gateway_env, stream_events

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODEL = "gpt-5-codex"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.fixture
def gw(gateway_factory, upstream, tmp_path):
    return gateway_factory(gateway_env(upstream, tmp_path), workers=2)


@pytest.fixture
def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30)


def test_plain_and_streaming(client, upstream):
    done = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert done.id.startswith("chatcmpl-") and done.object == "chat.completion"
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert done.choices[0].finish_reason == "stop"
    assert done.usage.prompt_tokens > 0 and done.usage.prompt_tokens_details.cached_tokens == 0

    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}, temperature=0.3))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.id == chunks[0].id and c.model == MODEL and c.created for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens > 0 and chunks[-1].choices == []
    sent = upstream.requests[-1]["body"]
    assert "temperature" not in sent  # the Codex backend rejects it ...
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], temperature=0.3)
    assert raw.headers["x-gateway-dropped-params"] == "temperature"  # ... and it is reported


def test_tool_round_trip_streamed(client, upstream):
    messages = [{"role": "user", "content": 'check [[call:get_weather {"city": "Paris"}]]'}]
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS,
                                                 stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id and calls[0].function.name == "get_weather"
    args = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(args) == {"city": "Paris"} and len(calls) >= 3  # arguments streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": calls[0].id, "type": "function",
         "function": {"name": "get_weather", "arguments": args}}]})
    messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 21C"})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "Tool result was: sunny, 21C"
    sent = upstream.requests[-1]["body"]["input"]
    assert [i["type"] for i in sent[-2:]] == ["function_call", "function_call_output"]
    assert sent[-1]["call_id"] == sent[-2]["call_id"] == calls[0].id


def test_json_schema_and_reasoning(client, upstream):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}},
              "required": ["answer"], "additionalProperties": False}
    done = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "out", "schema": schema, "strict": True}},
        reasoning_effort="high")
    assert json.loads(done.choices[0].message.content) == {"answer": "ok"}
    sent = upstream.requests[-1]["body"]
    assert sent["text"]["format"]["type"] == "json_schema" and sent["reasoning"]["effort"] == "high"
    assert done.choices[0].message.model_extra.get("reasoning_content")
    assert done.usage.completion_tokens_details.reasoning_tokens > 0
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "think"}], reasoning_effort="low",
        stream=True))
    assert any((c.choices[0].delta.model_extra or {}).get("reasoning_content")
               for c in chunks if c.choices)


def test_second_turn_reports_cached_tokens(client):
    messages = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "one"}]
    first = client.chat.completions.create(model=MODEL, messages=messages,
                                           extra_headers={"x-session-id": "sdk-conv"})
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "two"}]
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True},
        extra_headers={"x-session-id": "sdk-conv"}))
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens > 0


def test_refusals_and_mid_stream_errors(client, gw, upstream):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], n=2)
    assert "n" in str(exc.value)
    upstream.inject("reset_mid_stream")
    resp = requests.post(gw.url + "/v1/chat/completions", headers=auth_headers(), stream=True,
                         json={"model": MODEL, "stream": True,
                               "messages": [{"role": "user", "content": "x"}]}, timeout=30)
    raw = b"".join(resp.iter_content(chunk_size=None))
    assert b'"error"' in raw and b"[DONE]" not in raw


def test_opencode_capture_replays_as_valid_responses_requests(gw, upstream):
    captured = json.loads((FIXTURES / "opencode-two-turns.json").read_text())
    for req in captured:
        headers = {k: v for k, v in req["headers"].items()
                   if k.lower() in ("x-session-id", "x-session-affinity", "user-agent")}
        resp = requests.post(gw.url + req["path"], json=req["body"], stream=True,
                             headers=auth_headers(**headers), timeout=30)
        assert resp.status_code == 200, resp.text
        frames = b"".join(resp.iter_content(chunk_size=None))
        assert frames.rstrip().endswith(b"data: [DONE]")
        assert resp.headers["x-gateway-continuity"] == "client_session"
        assert resp.headers["x-gateway-dropped-params"] == "max_tokens"
    records = upstream.requests[-len(captured):]
    assert all(r["status"] == 200 for r in records)
    assert len({(r["body"]["prompt_cache_key"], r["headers"]["session_id"]) for r in records}) == 1
    for req, rec in zip(captured, records):
        tools = req["body"].get("tools", [])
        assert [t["name"] for t in rec["body"].get("tools", [])] == \
            [t["function"]["name"] for t in tools]
        roles = [i.get("role") for i in rec["body"]["input"]]
        assert roles[0] == "developer" and "system" not in roles


def test_equivalent_conversations_get_one_envelope_on_both_endpoints(gw, upstream):
    chat = {"model": MODEL, "messages": [{"role": "system", "content": LONG_SYSTEM},
                                         {"role": "user", "content": "same question"}]}
    responses = {"model": MODEL, "instructions": LONG_SYSTEM, "input": "same question"}
    for path, body, stream in [("/v1/chat/completions", chat, False),
                               ("/v1/responses", responses, True),
                               ("/v1/chat/completions", dict(chat, stream=True), True),
                               ("/v1/responses", responses, False)]:
        body = dict(body, stream=stream) if path == "/v1/responses" else body
        resp = requests.post(gw.url + path, json=body, headers=auth_headers(), stream=stream,
                             timeout=30)
        assert resp.status_code == 200 and resp.headers["x-gateway-continuity"] == "conversation"
        if stream:
            stream_events(resp)
    envelopes = {(r["headers"]["chatgpt-account-id"], r["body"]["prompt_cache_key"],
                  r["headers"]["session_id"], r["headers"]["session-id"])
                 for r in upstream.requests[-4:]}
    assert len(envelopes) == 1
