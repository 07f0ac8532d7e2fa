"""The google-genai Python SDK (pinned in the test extra) on the Gemini dialect: real gunicorn
(2 workers) → fake Codex upstream.

What an SDK user sees: text, streaming, a function-calling round trip, thought parts whose
signature brings the reasoning back upstream (through the SDK's own bytes/base64 handling),
``count_tokens``, and errors as the SDK's own exception classes. The SDK's default API
version is ``v1``; ``v1beta`` (Gemini CLI's) is used for half of the calls.
"""
from __future__ import annotations

import pytest
import requests
from google import genai
from google.genai import errors
from google.genai import types

from tests.fakes.codex_answers import encrypted_by
from tests.support import CLIENT_KEY

from .clients import HELLO

MODEL = "gemini-2.5-flash"  # a Gemini name: the catalog's gemini-*flash* alias serves it
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="The weather in a city.",
    parameters=types.Schema(type=types.Type.OBJECT, required=["city"],
                            properties={"city": types.Schema(type=types.Type.STRING)}))
CALL = '[[call:get_weather {"city": "Paris"}]]'  # the fake upstream answers with this call
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)
THINK = types.ThinkingConfig(include_thoughts=True, thinking_budget=100)


def _client(gateway, key=CLIENT_KEY, version=None) -> genai.Client:
    options = {"base_url": gateway.url}
    if version:
        options["api_version"] = version
    return genai.Client(api_key=key, http_options=types.HttpOptions(**options))


@pytest.mark.parametrize("version, path", [(None, "/v1/"), ("v1beta", "/v1beta/")])
def test_text_and_streaming(gateway, fresh, version, path):
    client = _client(gateway, version=version)
    before = len(gateway.logs())
    answer = client.models.generate_content(model=MODEL, contents="Say hello")
    assert answer.text == HELLO and answer.model_version == MODEL
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    usage = answer.usage_metadata
    assert usage.prompt_token_count == fresh.requests[-1]["input_tokens"] > 0
    assert usage.cached_content_token_count == 0 and usage.candidates_token_count > 0

    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Say hello"))
    assert len(chunks) > 2 and "".join(c.text or "" for c in chunks) == HELLO
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert [r["body"]["model"] for r in fresh.requests] == ["gpt-5.4-mini"] * 2
    logs = gateway.logs_since(before, f"model={MODEL}->gpt-5.4-mini", 2)
    assert f'"POST {path}models/{MODEL}:generateContent HTTP/1.1" 200' in logs
    assert f'"POST {path}models/{MODEL}:streamGenerateContent?alt=sse HTTP/1.1" 200' in logs
    assert logs.count(f"model={MODEL}->gpt-5.4-mini") == 2


def test_function_calling_round_trip_with_thoughts(gateway, fresh):
    client = _client(gateway, version="v1beta")
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], thinking_config=THINK,
        automatic_function_calling=NO_AFC, system_instruction="You answer briefly.")
    question = types.Content(role="user", parts=[types.Part(text=CALL)])
    first = client.models.generate_content(model=MODEL, contents=[question], config=config)
    [call] = first.function_calls
    assert call.name == "get_weather" and call.args == {"city": "Paris"} and call.id
    parts = first.candidates[0].content.parts
    thoughts = [p for p in parts if p.thought]
    assert thoughts and thoughts[0].text  # the reasoning summary, as a thought part
    signed = [p for p in parts if p.thought_signature]
    assert signed and signed[0].function_call is not None  # bytes to the SDK
    upstream_tool = fresh.requests[-1]["body"]["tools"][0]
    assert upstream_tool["name"] == "get_weather"
    assert upstream_tool["parameters"]["properties"]["city"]["type"] == "string"

    result = types.Part.from_function_response(name="get_weather", response={"output": "sunny"})
    result.function_response.id = call.id
    second = client.models.generate_content(
        model=MODEL, config=config,
        contents=[question, first.candidates[0].content,
                  types.Content(role="user", parts=[result])])
    assert second.text == "Tool result was: sunny"
    # The thought signature came back through the SDK as the reasoning item it carried.
    body = fresh.requests[-1]["body"]
    reasoning, function_call, output = body["input"][-3:]
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"] == encrypted_by(fresh.requests[0]['id'], fresh.requests[0]['account'])
    assert function_call["call_id"] == call.id == output["call_id"]
    assert output["output"] == "sunny"
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}  # snake_case config read
    # The second turn reuses the first's prompt prefix (the fake's cache model needs 1024
    # tokens, so the prefix is not long enough here; the gateway kept one key for both).
    assert len({r["body"]["prompt_cache_key"] for r in fresh.requests}) == 1


def test_streamed_thoughts_round_trip(gateway, fresh):
    client = _client(gateway)
    config = types.GenerateContentConfig(thinking_config=THINK)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Say hello",
                                                        config=config))
    parts = [p for c in chunks for p in c.candidates[0].content.parts or ()]
    assert any(p.thought and p.text for p in parts)
    assert "".join(p.text for p in parts if p.text and not p.thought) == HELLO
    history = types.Content(role="model", parts=[p for p in parts if not p.thought])
    client.models.generate_content(model=MODEL, config=config, contents=[
        types.Content(role="user", parts=[types.Part(text="Say hello")]), history,
        types.Content(role="user", parts=[types.Part(text="Again")])])
    replayed = [i for i in fresh.requests[-1]["body"]["input"] if i.get("type") == "reasoning"]
    assert [i["encrypted_content"] for i in replayed] == [
        encrypted_by(fresh.requests[0]['id'], fresh.requests[0]['account'])]


def test_count_tokens(gateway, fresh):
    client = _client(gateway)
    short = client.models.count_tokens(model=MODEL, contents="Say hello").total_tokens
    long = client.models.count_tokens(model=MODEL, contents="Say hello " * 200).total_tokens
    assert 0 < short < long
    assert fresh.requests == []  # an estimate: no upstream call


def test_error_classes(gateway, fresh):
    stranger, client = _client(gateway, key="not-a-key"), _client(gateway)  # kept: a client
    with pytest.raises(errors.ClientError) as bad_key:                     # closes when freed
        stranger.models.generate_content(model=MODEL, contents="x")
    assert bad_key.value.code == 401 and bad_key.value.status == "UNAUTHENTICATED"
    with pytest.raises(errors.ClientError) as unknown:
        client.models.generate_content(model="no-such-model", contents="x")
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    assert "does not exist" in unknown.value.message
    # Bad JSON never comes out of the SDK: sent by hand, read back with the SDK's class.
    resp = requests.post(f"{gateway.url}/v1/models/{MODEL}:generateContent", data=b"{oops",
                         headers={"x-goog-api-key": CLIENT_KEY,
                                  "Content-Type": "application/json"}, timeout=30)
    with pytest.raises(errors.ClientError) as bad_json:
        errors.APIError.raise_for_response(resp)
    assert bad_json.value.code == 400 and bad_json.value.status == "INVALID_ARGUMENT"
    assert fresh.requests == []
