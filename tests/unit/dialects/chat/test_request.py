"""Chat Completions request -> Responses request: one row per mapping rule."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.dialects.tools import shorten_tool_name
from gateway.dialects.tools import stable_call_id
from gateway.dialects.chat.request import translate_request
from tests.support import FIXTURES

CAPTURE = FIXTURES / "opencode-two-turns.json"
USER = {"role": "user", "content": "hi"}
USER_ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
PARAMS = {"type": "object", "properties": {"q": {"type": "string"}}}
LONG = "mcp__some_server__" + "x" * 80


def body(*messages, **extra):
    return {"model": "gpt-5", "messages": list(messages) or [USER], **extra}


def fn_tool(name, **extra):
    return {"type": "function", "function": {"name": name, "parameters": PARAMS, **extra}}


# --- messages -> input ----------------------------------------------------------

MESSAGES = [
    ("system", [{"role": "system", "content": "be brief"}],
     [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}]),
    ("developer parts", [{"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
     [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}]),
    ("user string", [USER], [USER_ITEM]),
    ("user text part", [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], [USER_ITEM]),
    ("image url string", [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x/y.png"}]}],
     [{"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"}]}]),
    ("image url object with detail", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "high"}}]}],
     [{"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "high"}]}]),
    ("file part", [{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"}}]}],
     [{"type": "message", "role": "user", "content": [{"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"}]}]),
    ("file id", [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
     [{"type": "message", "role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]),
    ("input audio", [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}],
     [{"type": "message", "role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]),
    ("assistant string", [USER, {"role": "assistant", "content": "hello"}],
     [USER_ITEM, {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]}]),
    ("assistant text and refusal parts", [USER, {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}]}],
     [USER_ITEM, {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}, {"type": "output_text", "text": "no"}]}]),
    ("assistant only tool calls: no message item",
     [USER, {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "ok"}],
     [USER_ITEM, {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "c1", "output": "ok"}]),
    ("assistant empty text and tool calls",
     [USER, {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}],
     [USER_ITEM, {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]),
    ("assistant text then tool calls in order",
     [USER, {"role": "assistant", "content": "let me look", "tool_calls": [
         {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
         {"id": "c2", "type": "function", "function": {"name": "g", "arguments": {"b": 2}}}]}],
     [USER_ITEM, {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me look"}]},
      {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
      {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{\"b\":2}"}]),
    ("tool output text parts joined", [USER, {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
     [USER_ITEM, {"type": "function_call_output", "call_id": "c1", "output": "ab"}]),
    ("tool output with image keeps parts", [USER, {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": "https://i"}]}],
     [USER_ITEM, {"type": "function_call_output", "call_id": "c1", "output": [
         {"type": "input_text", "text": "a"}, {"type": "input_image", "image_url": "https://i", "detail": "auto"}]}]),
    ("tool output null", [USER, {"role": "tool", "tool_call_id": "c1", "content": None}],
     [USER_ITEM, {"type": "function_call_output", "call_id": "c1", "output": ""}]),
    ("legacy function_call and function role",
     [USER, {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
      {"role": "function", "name": "f", "content": "ok"}],
     [USER_ITEM, {"type": "function_call", "call_id": stable_call_id(1, 0, "f", "{}"), "name": "f", "arguments": "{}"},
      {"type": "function_call_output", "call_id": stable_call_id(1, 0, "f", "{}"), "output": "ok"}]),
    ("custom tool call", [USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "patch", "input": "diff"}}]}],
     [USER_ITEM, {"type": "custom_tool_call", "call_id": "c1", "name": "patch", "input": "diff"}]),
    ("empty part list skipped", [{"role": "system", "content": []}, USER], [USER_ITEM]),
]


@pytest.mark.parametrize("messages, expected", [r[1:] for r in MESSAGES], ids=[r[0] for r in MESSAGES])
def test_messages_to_input(messages, expected):
    assert translate_request(body(*messages)).responses["input"] == expected


# --- top-level fields ----------------------------------------------------------

ABSENT = object()
FIELDS = [
    ("defaults", {}, {"model": "gpt-5", "instructions": "", "tools": ABSENT, "tool_choice": ABSENT,
                      "parallel_tool_calls": ABSENT, "reasoning": ABSENT, "text": ABSENT, "stream": ABSENT,
                      "store": ABSENT, "include": ABSENT, "stream_options": ABSENT, "max_output_tokens": ABSENT}),
    ("function tool flattened, strict defaults to false", {"tools": [fn_tool("f", description="d")]},
     {"tools": [{"type": "function", "name": "f", "description": "d", "parameters": PARAMS, "strict": False}]}),
    ("strict kept", {"tools": [fn_tool("f", strict=True)]},
     {"tools": [{"type": "function", "name": "f", "parameters": PARAMS, "strict": True}]}),
    ("missing parameters get an empty schema", {"tools": [{"type": "function", "function": {"name": "f"}}]},
     {"tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}, "strict": False}]}),
    ("built-in tool passes through", {"tools": [{"type": "web_search"}]}, {"tools": [{"type": "web_search"}]}),
    ("legacy functions", {"functions": [{"name": "f", "parameters": PARAMS}]},
     {"tools": [{"type": "function", "name": "f", "parameters": PARAMS, "strict": False}]}),
    ("tool_choice auto", {"tool_choice": "auto"}, {"tool_choice": "auto"}),
    ("tool_choice none", {"tool_choice": "none"}, {"tool_choice": "none"}),
    ("tool_choice required", {"tool_choice": "required"}, {"tool_choice": "required"}),
    ("tool_choice function", {"tool_choice": {"type": "function", "function": {"name": "f"}}},
     {"tool_choice": {"type": "function", "name": "f"}}),
    ("tool_choice allowed_tools", {"tool_choice": {"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "f"}}]}}},
     {"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}}),
    ("legacy function_call choice", {"function_call": {"name": "f"}}, {"tool_choice": {"type": "function", "name": "f"}}),
    ("parallel_tool_calls false honoured", {"parallel_tool_calls": False}, {"parallel_tool_calls": False}),
    ("parallel_tool_calls true", {"parallel_tool_calls": True}, {"parallel_tool_calls": True}),
    ("reasoning effort with summaries", {"reasoning_effort": "high"}, {"reasoning": {"effort": "high", "summary": "auto"}}),
    ("reasoning none has no summary", {"reasoning_effort": "none"}, {"reasoning": {"effort": "none"}}),
    ("json_schema format", {"response_format": {"type": "json_schema", "json_schema": {
        "name": "out", "schema": PARAMS, "strict": True, "description": "d"}}},
     {"text": {"format": {"type": "json_schema", "name": "out", "schema": PARAMS, "strict": True, "description": "d"}}}),
    ("json_object format", {"response_format": {"type": "json_object"}}, {"text": {"format": {"type": "json_object"}}}),
    ("text format", {"response_format": {"type": "text"}}, {"text": {"format": {"type": "text"}}}),
    ("verbosity", {"verbosity": "low"}, {"text": {"verbosity": "low"}}),
    ("max_tokens", {"max_tokens": 100}, {"max_output_tokens": 100}),
    ("max_completion_tokens wins", {"max_tokens": 100, "max_completion_tokens": 50}, {"max_output_tokens": 50}),
    ("copied fields", {"temperature": 0.2, "top_p": 0.9, "metadata": {"a": "b"}, "user": "u", "service_tier": "flex",
                       "prompt_cache_key": "k", "prompt_cache_retention": "24h", "safety_identifier": "s"},
     {"temperature": 0.2, "top_p": 0.9, "metadata": {"a": "b"}, "user": "u", "service_tier": "flex",
      "prompt_cache_key": "k", "prompt_cache_retention": "24h", "safety_identifier": "s"}),
    ("null fields are absent", {"temperature": None, "max_tokens": None, "tools": None, "tool_choice": None},
     {"temperature": ABSENT, "max_output_tokens": ABSENT, "tools": ABSENT, "tool_choice": ABSENT}),
    ("client stream/store/stream_options not forwarded", {"stream": True, "store": True, "stream_options": {"include_usage": True}},
     {"stream": ABSENT, "store": ABSENT, "stream_options": ABSENT}),
    ("harmless n=1 logprobs=false", {"n": 1, "logprobs": False, "modalities": ["text"]}, {"model": "gpt-5"}),
]


@pytest.mark.parametrize("extra, expected", [r[1:] for r in FIELDS], ids=[r[0] for r in FIELDS])
def test_fields(extra, expected):
    out = translate_request(body(**extra)).responses
    for key, value in expected.items():
        if value is ABSENT:
            assert key not in out, key
        else:
            assert out[key] == value, key


SIDE = [
    ("stream and usage", {"stream": True, "stream_options": {"include_usage": True}}, "stream", True),
    ("include_usage", {"stream": True, "stream_options": {"include_usage": True}}, "include_usage", True),
    ("no stream_options", {"stream": True}, "include_usage", False),
    ("stream false", {"stream": False}, "stream", False),
    ("stop string", {"stop": "END"}, "stop", ["END"]),
    ("stop list", {"stop": ["a", "b", ""]}, "stop", ["a", "b"]),
    ("no stop", {}, "stop", []),
    ("dropped params", {"presence_penalty": 0.5, "frequency_penalty": 0.1, "seed": 1, "logit_bias": {"1": 2}, "top_logprobs": 0},
     "dropped", ["presence_penalty", "frequency_penalty", "seed", "logit_bias", "top_logprobs"]),
    ("nothing dropped", {"temperature": 1}, "dropped", []),
    ("alias max_tokens", {"max_tokens": 5}, "param_aliases", {"max_output_tokens": "max_tokens"}),
    ("alias max_completion_tokens", {"max_completion_tokens": 5}, "param_aliases", {"max_output_tokens": "max_completion_tokens"}),
    ("alias reasoning and text", {"reasoning_effort": "low", "response_format": {"type": "text"}}, "param_aliases",
     {"reasoning": "reasoning_effort", "text": "response_format"}),
    ("no shortened names", {"tools": [fn_tool("f")]}, "tool_names", {}),
]


@pytest.mark.parametrize("extra, attr, expected", [r[1:] for r in SIDE], ids=[r[0] for r in SIDE])
def test_side_fields(extra, attr, expected):
    assert getattr(translate_request(body(**extra)), attr) == expected


# --- errors --------------------------------------------------------------------

ERRORS = [
    ("body not object", [], None, "JSON object"),
    ("model missing", {"messages": [USER]}, "model", "model"),
    ("model not string", {"model": 5, "messages": [USER]}, "model", "model"),
    ("messages missing", {"model": "m"}, "messages", "messages"),
    ("messages empty", {"model": "m", "messages": []}, "messages", "non-empty"),
    ("messages not list", {"model": "m", "messages": "hi"}, "messages", "messages"),
    ("message not object", {"model": "m", "messages": ["hi"]}, "messages[0]", "'messages[0]' must be an object"),
    ("unknown role", {"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "robot"),
    ("bad content", {"model": "m", "messages": [USER, {"role": "user", "content": 5}]}, "messages[1].content",
     "'messages[1].content' must be a string or an array of content parts"),
    ("system content null", {"model": "m", "messages": [{"role": "system", "content": None}]}, "messages[0].content", "content"),
    ("unknown part type", {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
     "messages[0].content[0].type", "video"),
    ("image without url", {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content[0].image_url", "url"),
    ("tool without id", {"model": "m", "messages": [USER, {"role": "tool", "content": "x"}]}, "messages[1].tool_call_id", "tool_call_id"),
    ("tool call without name", {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]},
     "messages[0].tool_calls[0].function.name", "name"),
    ("tools not list", body(tools={"type": "function"}), "tools", "array"),
    ("tool not object", body(tools=["f"]), "tools[0]", "tools[0]"),
    ("tool without name", body(tools=[{"type": "function", "function": {"parameters": {}}}]), "tools[0].function.name", "name"),
    ("tool bad parameters", body(tools=[{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
     "tools[0].function.parameters", "parameters"),
    ("tool_choice bad string", body(tool_choice="always"), "tool_choice", "tool_choice"),
    ("tool_choice function without name", body(tool_choice={"type": "function", "function": {}}), "tool_choice", "tool_choice"),
    ("response_format bad type", body(response_format={"type": "xml"}), "response_format", "response_format"),
    ("response_format not object", body(response_format="json"), "response_format", "response_format"),
    ("json_schema without name", body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
     "response_format.json_schema", "name"),
    ("n > 1", body(n=2), "n", "n"),
    ("logprobs", body(logprobs=True), "logprobs", "logprobs"),
    ("top_logprobs > 0", body(top_logprobs=3), "top_logprobs", "top_logprobs"),
    ("audio", body(audio={"voice": "x", "format": "wav"}), "audio", "audio"),
    ("audio modality", body(modalities=["text", "audio"]), "modalities", "audio"),
    ("too many stops", body(stop=["a", "b", "c", "d", "e"]), "stop", "4"),
    ("stop not strings", body(stop=[1]), "stop", "stop"),
    ("reasoning_effort not string", body(reasoning_effort=3), "reasoning_effort", "reasoning_effort"),
]


@pytest.mark.parametrize("bad, param, fragment", [r[1:] for r in ERRORS], ids=[r[0] for r in ERRORS])
def test_errors(bad, param, fragment):
    with pytest.raises(GatewayError) as info:
        translate_request(bad)
    err = info.value
    assert err.status == 400 and err.param == param and fragment in err.message


# --- tool names and call ids ---------------------------------------------------


def test_long_tool_names_shortened_everywhere_and_restorable():
    req = translate_request(body(
        USER,
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": LONG, "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        tools=[fn_tool(LONG), fn_tool("short")],
        tool_choice={"type": "function", "function": {"name": LONG}},
    ))
    short = req.responses["tools"][0]["name"]
    assert len(short) <= 64 and short != LONG
    assert req.responses["tools"][1]["name"] == "short"
    assert req.responses["tool_choice"] == {"type": "function", "name": short}
    assert req.responses["input"][1]["name"] == short
    assert req.tool_names == {short: LONG}
    # deterministic across requests and distinct for different long names
    assert translate_request(body(tools=[fn_tool(LONG)])).tool_names == {short: LONG}
    assert shorten_tool_name(LONG + "y") != short


@pytest.mark.parametrize("limit", [16, 32, 64])
def test_shorten_respects_limit(limit):
    assert len(shorten_tool_name("n" * 200, limit)) == limit
    assert shorten_tool_name("n" * limit, limit) == "n" * limit


def test_missing_call_ids_are_stable_across_turns():
    turn = [USER, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
        {"type": "function", "function": {"name": "f", "arguments": "{\"a\":2}"}}]}]
    first = translate_request(body(*turn)).responses["input"]
    later = translate_request(body(*turn, {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"},
                                   {"role": "user", "content": "more"})).responses["input"]
    ids = [first[1]["call_id"], first[2]["call_id"]]
    assert ids[0].startswith("call_") and ids[0] != ids[1]
    assert [later[1]["call_id"], later[2]["call_id"]] == ids
    # tool messages without ids answer the generated ones in order
    assert [later[3]["call_id"], later[4]["call_id"]] == ids


# --- a real client -------------------------------------------------------------

CAPTURED = [r["body"] for r in json.loads(CAPTURE.read_text())] if CAPTURE.exists() else []


@pytest.mark.skipif(not CAPTURED, reason="capture not available")
@pytest.mark.parametrize("index", range(len(CAPTURED)))
def test_opencode_capture(index):
    chat = CAPTURED[index]
    req = translate_request(chat)
    out = req.responses
    json.dumps(out)  # serialisable as-is
    assert out["model"] == chat["model"] and out["instructions"] == ""
    assert not {"stream", "store", "include", "stream_options", "messages"} & out.keys()
    assert req.stream is True and req.include_usage is True
    assert out["max_output_tokens"] == chat["max_tokens"]
    assert req.param_aliases["max_output_tokens"] == "max_tokens"
    role_map = {"system": "developer"}
    assert [i["role"] for i in out["input"]] == [role_map.get(m["role"], m["role"]) for m in chat["messages"]]
    assert [i["content"][0]["text"] for i in out["input"]] == [m["content"] for m in chat["messages"]]
    assert all(i["type"] == "message" for i in out["input"])
    tools = chat.get("tools", [])
    assert [t["name"] for t in out.get("tools", [])] == [t["function"]["name"] for t in tools]
    for flat, orig in zip(out.get("tools", []), tools):
        assert flat["parameters"] == orig["function"]["parameters"]
        assert flat["description"] == orig["function"]["description"]
    if "tool_choice" in chat:
        assert out["tool_choice"] == chat["tool_choice"]
    if "reasoning_effort" in chat:
        assert out["reasoning"] == {"effort": chat["reasoning_effort"], "summary": "auto"}
    assert req.dropped == [] and req.tool_names == {}


# --- robustness ----------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "x"])},
    optional={"content": _json, "tool_calls": _json, "tool_call_id": _json, "name": _json, "function_call": _json},
)


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(_message | _json, max_size=4), extra=st.dictionaries(
    st.sampled_from(["tools", "tool_choice", "response_format", "stop", "n", "reasoning_effort", "functions",
                     "function_call", "stream_options", "top_logprobs", "modalities"]), _json, max_size=3))
def test_never_raises_anything_but_400(messages, extra):
    try:
        req = translate_request({"model": "m", "messages": messages, **extra})
    except GatewayError as err:
        assert err.status == 400
    else:
        json.dumps(req.responses)


def test_unknown_fields_are_reported_not_silently_lost():
    req = translate_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                             "my_vendor_flag": True, "seed": 1, "store": True})
    assert req.dropped == ["seed", "my_vendor_flag"]
