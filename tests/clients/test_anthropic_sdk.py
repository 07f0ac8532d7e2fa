"""The Anthropic Python SDK on ``/v1/messages``: real gunicorn (2 workers) → fake Codex upstream.

What an SDK user sees: text, ``messages.stream``, a tool round trip, thinking blocks whose
signature brings the reasoning back upstream, usage with the cached part split out, and
errors as the SDK's own exception classes.
"""
from __future__ import annotations

import anthropic
import pytest

from tests.fakes.codex_answers import encrypted_by
from tests.support import ERROR_BODIES
from tests.support import CLIENT_KEY, LONG_SYSTEM

from .clients import HELLO

MODEL = "claude-sonnet-4-5"  # an Anthropic name: the catalog's claude-* alias serves it
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
CALL = '[[call:get_weather {"city": "Paris"}]]'  # the fake upstream answers with this call


@pytest.fixture
def client(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)


def test_text_streamed_and_not(client, fresh):
    message = client.messages.create(model=MODEL, max_tokens=256,
                                     messages=[{"role": "user", "content": "Say hello"}])
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == HELLO
    assert message.role == "assistant" and message.model == MODEL
    assert message.stop_reason == "end_turn" and message.id.startswith("msg_")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    with client.messages.stream(model=MODEL, max_tokens=256,
                                messages=[{"role": "user", "content": "Say hello"}]) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(deltas) > 1 and "".join(deltas) == HELLO
    assert final.content[0].text == HELLO and final.stop_reason == "end_turn"
    # The answer's usage: what the upstream counted.
    assert final.usage.input_tokens == fresh.requests[-1]["input_tokens"]

    # The key as a Bearer token (auth_token, what ANTHROPIC_AUTH_TOKEN sets) works the same.
    bearer = anthropic.Anthropic(base_url=client.base_url, auth_token=CLIENT_KEY, max_retries=0)
    assert bearer.messages.create(model=MODEL, max_tokens=256, messages=[
        {"role": "user", "content": "Say hello"}]).content[0].text == HELLO
    assert client.messages.count_tokens(model=MODEL, messages=[
        {"role": "user", "content": "Say hello"}]).input_tokens > 0
    assert len(fresh.requests) == 3  # count_tokens is an estimate: no upstream call
    assert {r["body"]["model"] for r in fresh.requests} == {"gpt-5.5"}


def test_tool_round_trip(client, fresh):
    question = {"role": "user", "content": CALL}
    with client.messages.stream(model=MODEL, max_tokens=256, tools=[WEATHER],
                                messages=[question]) as stream:
        partial = [e.partial_json for e in stream if e.type == "input_json"]
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use" and partial
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}

    answer = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER], messages=[
        question,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "Sunny, 21 °C"}]},
    ])
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text == "Tool result was: Sunny, 21 °C"
    # Upstream: the call and its output, matched by the id the SDK echoed.
    call, output = fresh.requests[-1]["body"]["input"][-2:]
    assert call["type"] == "function_call" and call["call_id"] == use.id
    # The model's own bytes: the SDK re-serialised them, prefix repair restored them.
    assert call["name"] == "get_weather" and call["arguments"] == '{"city": "Paris"}'
    assert output == {"type": "function_call_output", "call_id": use.id, "output": "Sunny, 21 °C"}


def test_thinking_round_trip_and_cached_tokens(client, fresh):
    """Turn 1 asks for thinking: its block carries a gateway signature. Turn 2 sends it back:
    the upstream gets the reasoning item with its encrypted content, and the shared prefix
    (a long system prompt) is served from the cache."""
    thinking = {"type": "enabled", "budget_tokens": 2048}
    turn1 = [{"role": "user", "content": "Say hello"}]
    with client.messages.stream(model=MODEL, max_tokens=4096, system=LONG_SYSTEM,
                                thinking=thinking, messages=turn1) as stream:
        kinds = [e.type for e in stream]
        first = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds and "text" in kinds
    block, text = first.content
    assert block.type == "thinking" and block.thinking and block.signature.startswith("cgw1.")
    assert text.text == HELLO
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.output_tokens_details.thinking_tokens > 0
    issued = encrypted_by(fresh.requests[-1]['id'], fresh.requests[-1]['account'])

    second = client.messages.create(model=MODEL, max_tokens=4096, system=LONG_SYSTEM,
                                    thinking=thinking, messages=turn1 + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": "Say it again"}])
    record = fresh.requests[-1]
    [reasoning] = [i for i in record["body"]["input"] if i.get("type") == "reasoning"]
    assert reasoning["encrypted_content"] == issued and reasoning["id"].startswith("rs_")
    assert record["cached_tokens"] > 0
    assert second.usage.cache_read_input_tokens == record["cached_tokens"]
    assert second.usage.input_tokens == record["input_tokens"] - record["cached_tokens"]
    assert second.content[-1].text == HELLO


def test_error_shapes(client, fresh):
    # Bad JSON (sent raw through the SDK's own client): a 400, invalid_request_error.
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.post("/v1/messages", cast_to=anthropic.types.Message, content=b'{"model": ',
                    options={"headers": {"Content-Type": "application/json"}})
    # A wrong key: 401, authentication_error; the key is not echoed.
    wrong = anthropic.Anthropic(base_url=client.base_url, api_key="wrong-key-0123", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as denied:
        wrong.messages.create(model=MODEL, max_tokens=16,
                              messages=[{"role": "user", "content": "Say hello"}])
    # A model no alias or catalog entry serves: 404, not_found_error naming what exists.
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="no-such-model", max_tokens=16,
                               messages=[{"role": "user", "content": "Say hello"}])
    for err, status, kind in ((bad, 400, "invalid_request_error"),
                              (denied, 401, "authentication_error"),
                              (unknown, 404, "not_found_error")):
        assert err.value.status_code == status
        assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == kind
        assert err.value.body["error"]["message"]
        with open(ERROR_BODIES, "ab") as fh:  # the SDK uses httpx: keep them for the audit
            fh.write(err.value.response.content + b"\n")
    assert "wrong-key-0123" not in str(denied.value.body)
    assert "gpt-5.5" in unknown.value.body["error"]["message"]
    assert fresh.requests == []  # none of them reached the upstream
