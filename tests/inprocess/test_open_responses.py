"""The Open Responses compliance cases (openresponses.org, ``compliance-tests.ts``) against
the fake Codex backend, every final response object and every streamed event validated
with the ``openresponses-types`` models. The tool cases steer the fake with its
``[[call:…]]`` marker, where the suite relies on a real model's choice."""
from __future__ import annotations

import base64

import pytest

from tests.support import CLIENT_KEY, open_responses_errors, parse_sse

RESP = "/v1/responses"
MODEL = "gpt-5.5"
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"]}}
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
       "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF").decode()


def user(content) -> dict:
    return {"type": "message", "role": "user", "content": content}


def respond(gw, body: dict, stream: bool = False) -> dict:
    """POST a request the way the suite does; the final response object, after checking
    the status, the object's schema and (streaming) every event's."""
    resp = gw.post(RESP, {"model": MODEL, **body, "stream": stream})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    if stream:
        events, _ = parse_sse(resp.get_data())
        assert events
        for event in events:
            assert event.data is not None
            assert event.type == event.data["type"]  # event: equals the payload's type
            assert open_responses_errors(event.data, "event") == [], event.data
        final = events[-1].data["response"]
        assert events[-1].type == "response.completed"
    else:
        final = resp.get_json()
    assert open_responses_errors(final) == []
    assert final["status"] == "completed" and final["output"]
    return final


@pytest.fixture
def gw(make_client):
    return make_client()


@pytest.mark.parametrize("stream", [False, True])
def test_basic_response(gw, stream):
    final = respond(gw, {"input": [user("Say hello in exactly 3 words.")]}, stream)
    assert final["output"][-1]["type"] == "message"
    assert final["store"] is True and final["tools"] == [] and final["temperature"] == 1.0


def test_streaming_response(gw):
    final = respond(gw, {"input": [user("Count from 1 to 5.")]}, stream=True)
    assert final["output"][-1]["content"][0]["type"] == "output_text"


def test_system_prompt(gw, upstream):
    final = respond(gw, {"input": [
        {"type": "message", "role": "system", "content": "You are a pirate."},
        user("Say hello.")]})
    assert final["output"]
    assert upstream.requests[-1]["body"]["input"][0]["role"] == "developer"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calling(gw, stream):
    final = respond(gw, {"input": [user('What is the weather? [[call:get_weather '
                                        '{"location":"San Francisco"}]]')],
                         "tools": [WEATHER]}, stream)
    call = final["output"][-1]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert final["tools"][0]["name"] == "get_weather"


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_roundtrip_with_previous_response_id(gw, upstream, stream):
    first = respond(gw, {"input": [user('[[call:get_weather {"location":"Paris"}]]')],
                         "tools": [WEATHER],
                         "tool_choice": {"type": "function", "name": "get_weather"}})
    call = first["output"][-1]
    second = respond(gw, {"previous_response_id": first["id"], "tools": [WEATHER], "input": [
        {"type": "function_call_output", "call_id": call["call_id"], "output": "18C, sunny"}]},
        stream)
    assert second["previous_response_id"] == first["id"]
    assert second["output"][-1]["content"][0]["text"] == "Tool result was: 18C, sunny"
    sent = upstream.requests[-1]["body"]["input"]
    assert sent[1] == call and sent[-1]["type"] == "function_call_output"


def test_image_input(gw, upstream):
    respond(gw, {"input": [user([{"type": "input_text", "text": "What is in this image?"},
                                 {"type": "input_image", "image_url": PNG}])]})
    assert upstream.requests[-1]["body"]["input"][0]["content"][1]["image_url"] == PNG


def test_file_input(gw, upstream):
    part = {"type": "input_file", "filename": "doc.pdf",
            "file_data": f"data:application/pdf;base64,{PDF}"}
    respond(gw, {"input": [user([{"type": "input_text", "text": "Summarise it."}, part])]})
    assert upstream.requests[-1]["body"]["input"][0]["content"][1] == part


def test_multi_turn(gw):
    respond(gw, {"input": [
        user("My name is Alice."),
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello Alice!"}]},
        user("What is my name?")]})


@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id(gw, upstream, stream):
    first = respond(gw, {"input": [user("Remember this word: papaya.")]})
    respond(gw, {"previous_response_id": first["id"],
                 "input": [user("What word did I ask you to remember?")]}, stream)
    assert "papaya" in str(upstream.requests[-1]["body"]["input"][0])


def test_a_retrieved_response_validates_too(gw):
    first = respond(gw, {"input": [user("hi")], "metadata": {"run": "7"}, "temperature": 0.2})
    gw.app.extensions["gateway"].responses_store.flush()
    got = gw.client.get(f"{RESP}/{first['id']}",
                        headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert got.status_code == 200
    body = got.get_json()
    assert open_responses_errors(body) == []
    assert body["metadata"] == {"run": "7"} and body["temperature"] == 0.2
