"""Gemini request -> Responses: every mapping rule of gateway/dialects/gemini/request.py's
table, one row each, in both spellings where clients use both."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dialects.gemini.request import client_authorization, translate_request
from gateway.dialects.gemini.schema import json_schema
from gateway.dialects.gemini.signature import encode_thought_signature
from gateway.errors import GatewayError

MODEL = "gemini-2.5-pro"
HI = [{"role": "user", "parts": [{"text": "hi"}]}]
SIG = encode_thought_signature({"id": "rs_1", "encrypted_content": "gAAA-1"})
REASONING = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA-1"}
WEATHER = {"name": "get_weather", "description": "Weather.",
           "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}}}
CALL = {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "get_weather",
                                                      "args": {"city": "Paris"}}}]}
CALL_ITEM = {"type": "function_call", "call_id": "c1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'}


def _user(*parts):
    return {"role": "user", "parts": list(parts)}


def _msg(role, *parts):
    return {"type": "message", "role": role, "content": list(parts)}


def _in(text):
    return {"type": "input_text", "text": text}


def _input(r):
    return r.responses["input"]


def _get(*keys):
    def pick(r):
        value = r.responses
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value
    return pick


# (rule, body (contents default HI), what to look at, expected, dropped names)
RULES = [
    ("systemInstruction -> leading developer message",
     {"systemInstruction": {"parts": [{"text": "Be brief."}]}}, _input,
     [_msg("developer", _in("Be brief.")), _msg("user", _in("hi"))], []),
    ("systemInstruction with role (google-genai) and snake_case name",
     {"system_instruction": {"role": "user", "parts": [{"text": "S"}]}},
     lambda r: _input(r)[0], _msg("developer", _in("S")), []),
    ("systemInstruction as a plain string", {"systemInstruction": "S"},
     lambda r: _input(r)[0], _msg("developer", _in("S")), []),
    ("user text parts -> one user message",
     {"contents": [_user({"text": "<ctx>"}, {"text": "Say hello"})]}, _input,
     [_msg("user", _in("<ctx>"), _in("Say hello"))], []),
    ("no role and role function -> user",
     {"contents": [{"parts": [{"text": "a"}]}, {"role": "function", "parts": [{"text": "b"}]}]},
     _input, [_msg("user", _in("a")), _msg("user", _in("b"))], []),
    ("model text -> assistant output_text",
     {"contents": [*HI, {"role": "model", "parts": [{"text": "hello"}]}]},
     lambda r: _input(r)[-1], _msg("assistant", {"type": "output_text", "text": "hello"}), []),
    ("inlineData image -> input_image data URL",
     {"contents": [_user({"inlineData": {"mimeType": "image/png", "data": "AAAA"}})]},
     lambda r: _input(r)[0]["content"],
     [{"type": "input_image", "image_url": "data:image/png;base64,AAAA"}], []),
    ("inline_data / mime_type (snake_case) too",
     {"contents": [_user({"inline_data": {"mime_type": "image/jpeg", "data": "AA"}})]},
     lambda r: _input(r)[0]["content"][0]["image_url"], "data:image/jpeg;base64,AA", []),
    ("inlineData text/* -> decoded input_text",
     {"contents": [_user({"inlineData": {"mimeType": "text/plain", "data": "aGVsbG8="}})]},
     lambda r: _input(r)[0]["content"], [_in("hello")], []),
    ("inlineData PDF -> input_file",
     {"contents": [_user({"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}})]},
     lambda r: _input(r)[0]["content"],
     [{"type": "input_file", "filename": "document.pdf",
       "file_data": "data:application/pdf;base64,JVBE"}], []),
    ("inlineData audio -> dropped",
     {"contents": [_user({"text": "x"}, {"inlineData": {"mimeType": "audio/wav", "data": "AA"}})]},
     lambda r: _input(r)[0]["content"], [_in("x")], ["contents.parts.inlineData.audio"]),
    ("fileData image URL -> input_image",
     {"contents": [_user({"fileData": {"mimeType": "image/png", "fileUri": "https://x/a.png"}})]},
     lambda r: _input(r)[0]["content"], [{"type": "input_image", "image_url": "https://x/a.png"}],
     []),
    ("fileData other URL -> input_file",
     {"contents": [_user({"fileData": {"mimeType": "application/pdf",
                                       "fileUri": "https://x/a.pdf"}})]},
     lambda r: _input(r)[0]["content"], [{"type": "input_file", "file_url": "https://x/a.pdf"}],
     []),
    ("fileData gs:// -> dropped",
     {"contents": [_user({"text": "x"}, {"fileData": {"fileUri": "gs://b/a"}})]},
     lambda r: len(_input(r)[0]["content"]), 1, ["contents.parts.fileData"]),
    ("functionCall -> function_call with the id",
     {"contents": [*HI, CALL]}, lambda r: _input(r)[-1], CALL_ITEM, []),
    ("functionCall without id -> a stable hash id",
     {"contents": [*HI, {"role": "model", "parts": [
         {"functionCall": {"name": "f", "args": {}}}]}]},
     lambda r: _input(r)[-1]["call_id"].startswith("call_"), True, []),
    ("functionResponse {output} -> function_call_output, matched by id",
     {"contents": [*HI, CALL, _user({"functionResponse": {
         "id": "c1", "name": "get_weather", "response": {"output": "sunny"}}})]},
     lambda r: _input(r)[-1], {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
     []),
    ("functionResponse without id -> matched by name",
     {"contents": [*HI, CALL, _user({"functionResponse": {
         "name": "get_weather", "response": {"temp": 20}}})]},
     lambda r: _input(r)[-1], {"type": "function_call_output", "call_id": "c1",
                               "output": '{"temp":20}'}, []),
    ("functionResponse {error} -> Error: prefix",
     {"contents": [*HI, CALL, _user({"functionResponse": {
         "id": "c1", "name": "get_weather", "response": {"error": "no city"}}})]},
     lambda r: _input(r)[-1]["output"], "Error: no city", []),
    ("functionResponse with parts -> output with the image",
     {"contents": [*HI, CALL, _user({"functionResponse": {
         "id": "c1", "name": "get_weather", "response": {"output": "map"},
         "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA"}}]}})]},
     lambda r: _input(r)[-1]["output"],
     [_in("map"), {"type": "input_image", "image_url": "data:image/png;base64,AA"}], []),
    ("the same functionResponse twice (Gemini CLI after --resume) -> once",
     {"contents": [*HI, CALL, _user(*[{"functionResponse": {
         "id": "c1", "name": "get_weather", "response": {"output": "sunny"}}}] * 2)]},
     lambda r: [i["type"] for i in _input(r)],
     ["message", "function_call", "function_call_output"],
     ["contents.parts.functionResponse.duplicate"]),
    ("functionResponse for no call -> user text",
     {"contents": [_user({"functionResponse": {"name": "f", "response": {"output": "x"}}})]},
     _input, [_msg("user", _in("Tool result (f):\nx"))], []),
    ("thoughtSignature the gateway issued -> reasoning item before the part's item",
     {"contents": [*HI, {"role": "model", "parts": [
         {"text": "Thinking", "thought": True},
         {**CALL["parts"][0], "thoughtSignature": SIG}]}]},
     lambda r: _input(r)[1:],
     [{**REASONING, "summary": [{"type": "summary_text", "text": "Thinking"}]}, CALL_ITEM], []),
    ("thought_signature (snake_case) on a text part",
     {"contents": [*HI, {"role": "model", "parts": [{"text": "hi", "thought_signature": SIG}]}]},
     lambda r: _input(r)[1:],
     [REASONING, _msg("assistant", {"type": "output_text", "text": "hi"})], []),
    ("the same signature twice -> one reasoning item",
     {"contents": [*HI, {"role": "model", "parts": [
         {"text": "", "thoughtSignature": SIG}, {"text": "a", "thoughtSignature": SIG}]}]},
     lambda r: [i["type"] for i in _input(r)], ["message", "reasoning", "message"], []),
    ("a foreign signature -> dropped; skip_thought_signature_validator silently",
     {"contents": [*HI, {"role": "model", "parts": [
         {"text": "a", "thoughtSignature": "Cq8BAY89"},
         {"text": "b", "thoughtSignature": "skip_thought_signature_validator"}]}]},
     lambda r: [i["type"] for i in _input(r)], ["message", "message"],
     ["contents.parts.thoughtSignature"]),
    ("unsigned thought parts -> dropped",
     {"contents": [*HI, {"role": "model", "parts": [{"text": "t", "thought": True},
                                                    {"text": "a"}]}]},
     lambda r: _input(r)[-1]["content"], [{"type": "output_text", "text": "a"}], []),
    ("executableCode and other parts -> dropped and reported",
     {"contents": [*HI, {"role": "model", "parts": [{"executableCode": {"code": "1"}}]}]},
     lambda r: len(_input(r)), 1, ["contents.parts.executableCode"]),
    ("functionDeclarations with parametersJsonSchema -> function tool",
     {"tools": [{"functionDeclarations": [WEATHER]}]}, _get("tools"),
     [{"type": "function", "name": "get_weather", "description": "Weather.",
       "parameters": WEATHER["parametersJsonSchema"], "strict": False}], []),
    ("parameters (OpenAPI, upper-case types, nullable) -> JSON Schema",
     {"tools": [{"function_declarations": [{"name": "f", "parameters": {
         "type": "OBJECT", "properties": {"q": {"type": "STRING", "nullable": True}},
         "propertyOrdering": ["q"]}}]}]},
     lambda r: r.responses["tools"][0]["parameters"],
     {"type": "object", "properties": {"q": {"type": ["string", "null"]}}}, []),
    ("no parameters -> an empty object schema",
     {"tools": [{"functionDeclarations": [{"name": "f"}]}]},
     lambda r: r.responses["tools"][0]["parameters"], {"type": "object", "properties": {}}, []),
    ("googleSearch, codeExecution, urlContext -> dropped and reported, never a 400",
     {"tools": [{"googleSearch": {}}, {"codeExecution": {}}, {"url_context": {}},
                {"functionDeclarations": [WEATHER]}]},
     lambda r: [t["name"] for t in r.responses["tools"]], ["get_weather"],
     ["tools.googleSearch", "tools.codeExecution", "tools.urlContext"]),
    ("toolConfig AUTO -> auto",
     {"tools": [{"functionDeclarations": [WEATHER]}],
      "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}}, _get("tool_choice"), "auto", []),
    ("toolConfig NONE -> none",
     {"tools": [{"functionDeclarations": [WEATHER]}],
      "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}, _get("tool_choice"), "none", []),
    ("toolConfig ANY -> required",
     {"tools": [{"functionDeclarations": [WEATHER]}],
      "tool_config": {"function_calling_config": {"mode": "ANY"}}},
     _get("tool_choice"), "required", []),
    ("toolConfig ANY with one allowed name -> that function",
     {"tools": [{"functionDeclarations": [WEATHER]}],
      "toolConfig": {"functionCallingConfig": {"mode": "ANY",
                                               "allowedFunctionNames": ["get_weather"]}}},
     _get("tool_choice"), {"type": "function", "name": "get_weather"}, []),
    ("toolConfig AUTO with allowed names -> allowed_tools",
     {"tools": [{"functionDeclarations": [WEATHER, {"name": "g"}]}],
      "toolConfig": {"functionCallingConfig": {"mode": "AUTO",
                                               "allowedFunctionNames": ["get_weather", "g"]}}},
     _get("tool_choice"), {"type": "allowed_tools", "mode": "auto", "tools": [
         {"type": "function", "name": "get_weather"}, {"type": "function", "name": "g"}]}, []),
    ("thinkingConfig includeThoughts + thinkingBudget 8192 (Gemini CLI, 2.5)",
     {"generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 8192}}},
     lambda r: (r.responses["reasoning"], r.thoughts), ({"effort": "medium", "summary": "auto"},
                                                         True), []),
    ("thinkingConfig snake_case (google-genai): include_thoughts, thinking_budget",
     {"generationConfig": {"thinkingConfig": {"include_thoughts": True, "thinking_budget": 100}}},
     lambda r: (r.responses["reasoning"], r.thoughts), ({"effort": "low", "summary": "auto"},
                                                         True), []),
    ("thinkingBudget 20000 -> high",
     {"generationConfig": {"thinkingConfig": {"thinkingBudget": 20000}}},
     _get("reasoning"), {"effort": "high"}, []),
    ("thinkingBudget 0 (thinking off) -> low, the least every model takes",
     {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}},
     _get("reasoning"), {"effort": "low"}, []),
    ("thinkingBudget -1 (dynamic) -> no effort, no thought parts",
     {"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}},
     lambda r: (r.responses.get("reasoning"), r.thoughts), (None, False), []),
    ("thinkingLevel HIGH (Gemini CLI, 3.x) -> high",
     {"generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"}}},
     _get("reasoning", "effort"), "high", []),
    ("thinking_level minimal -> low",
     {"generationConfig": {"thinkingConfig": {"thinking_level": "minimal"}}},
     _get("reasoning", "effort"), "low", []),
    ("no thinkingConfig -> no reasoning, encrypted reasoning still included",
     {}, lambda r: (r.responses.get("reasoning"), r.responses["include"]),
     (None, ["reasoning.encrypted_content"]), []),
    ("maxOutputTokens, temperature, topP -> Responses names (aliases kept)",
     {"generationConfig": {"maxOutputTokens": 100, "temperature": 1, "topP": 0.95}},
     lambda r: ({k: r.responses[k] for k in ("max_output_tokens", "temperature", "top_p")},
                r.param_aliases["top_p"]),
     ({"max_output_tokens": 100, "temperature": 1, "top_p": 0.95}, "generationConfig.topP"), []),
    ("max_output_tokens (snake_case) too",
     {"generation_config": {"max_output_tokens": 7}}, _get("max_output_tokens"), 7, []),
    ("topK -> dropped and reported",
     {"generationConfig": {"topK": 64}}, _get("top_k"), None, ["generationConfig.topK"]),
    ("seed, penalties, candidateCount 2 -> dropped and reported",
     {"generationConfig": {"seed": 1, "presencePenalty": 0.1, "candidateCount": 2}},
     _get("seed"), None,
     ["generationConfig.candidateCount", "generationConfig.seed",
      "generationConfig.presencePenalty"]),
    ("stopSequences -> emulated",
     {"generationConfig": {"stopSequences": ["END", "END"]}}, lambda r: r.stop, ["END"], []),
    ("responseMimeType JSON + responseJsonSchema (upper-case types) -> json_schema",
     {"generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
         "type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]}}},
     _get("text", "format"),
     {"type": "json_schema", "name": "output", "schema": {
         "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}, []),
    ("responseSchema (OpenAPI) -> json_schema",
     {"generationConfig": {"response_mime_type": "application/json",
                           "response_schema": {"type": "STRING", "enum": ["a"]}}},
     _get("text", "format", "schema"), {"type": "string", "enum": ["a"]}, []),
    ("responseMimeType JSON without a schema -> json_object",
     {"generationConfig": {"responseMimeType": "application/json"}},
     _get("text", "format"), {"type": "json_object"}, []),
    ("responseMimeType text/x.enum -> dropped",
     {"generationConfig": {"responseMimeType": "text/x.enum"}}, _get("text"), None,
     ["generationConfig.responseMimeType"]),
    ("safetySettings, cachedContent, labels -> dropped and reported",
     {"safetySettings": [{}], "cachedContent": "c/1", "labels": {"a": "b"}},
     _get("safety_settings"), None, ["safetySettings", "cachedContent", "labels"]),
    ("model name from the path; instructions empty",
     {}, lambda r: (r.responses["model"], r.responses["instructions"], r.model),
     (MODEL, "", MODEL), []),
]


@pytest.mark.parametrize("rule, body, look, expected, dropped", RULES, ids=[r[0] for r in RULES])
def test_mapping_rule(rule, body, look, expected, dropped):
    body = {"contents": HI, **body}
    req = translate_request(body, MODEL)
    assert look(req) == expected
    assert req.dropped == dropped


@pytest.mark.parametrize("body, message", [
    ([], "must be a JSON object"),
    ({}, "'contents' must be a non-empty array"),
    ({"contents": []}, "'contents' must be a non-empty array"),
    ({"contents": ["x"]}, "'contents[0]' must be a Content object"),
    ({"contents": [{"role": "user", "parts": "hi"}]}, "must be an array of Part objects"),
    ({"contents": [{"role": "user", "parts": ["hi"]}]}, "must be an array of Part objects"),
    ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "must be 'user' or 'model'"),
])
def test_what_cannot_be_served_is_a_400(body, message):
    with pytest.raises(GatewayError) as info:
        translate_request(body, MODEL)
    assert info.value.status == 400 and message in info.value.message


def test_long_tool_names_are_shortened_and_restored():
    name = "discovered_tool_" + "x" * 80
    req = translate_request({"contents": HI, "tools": [{"functionDeclarations": [
        {"name": name}]}]}, MODEL)
    short = req.responses["tools"][0]["name"]
    assert len(short) <= 64 and req.tool_names == {short: name}


def test_the_same_conversation_maps_to_the_same_bytes():
    body = {"contents": [*HI, {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {"b": 1, "a": 2}}}]}]}
    assert translate_request(body, MODEL).responses == translate_request(body, MODEL).responses
    assert translate_request(body, MODEL).responses["input"][-1]["arguments"] == '{"b":1,"a":2}'


@pytest.mark.parametrize("headers, query, expected", [
    ({"x-goog-api-key": "k1"}, None, "Bearer k1"),
    ({}, "k2", "Bearer k2"),
    ({"x-goog-api-key": "k1"}, "k2", "Bearer k1"),
    ({"Authorization": "Bearer k3"}, None, "Bearer k3"),
    ({}, None, None),
])
def test_client_key_from_header_query_or_bearer(headers, query, expected):
    assert client_authorization(headers, query) == expected


def test_schema_keywords_are_walked_but_property_names_are_data():
    schema = {"type": "OBJECT", "$schema": "x", "properties": {
        "type": {"type": "STRING"},
        "items": {"type": "ARRAY", "items": {"type": "INTEGER"}},
        "any": {"anyOf": [{"type": "STRING"}, {"type": "NULL"}]}}}
    assert json_schema(schema) == {"type": "object", "properties": {
        "type": {"type": "string"},
        "items": {"type": "array", "items": {"type": "integer"}},
        "any": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["contents", "parts", "role", "text", "functionCall", "functionResponse",
                         "inlineData", "fileData", "thoughtSignature", "thought", "tools",
                         "functionDeclarations", "toolConfig", "generationConfig", "mode",
                         "thinkingConfig", "systemInstruction", "name", "id", "args", "x"]),
        inner, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(body=_JSON)
def test_any_json_is_mapped_or_refused_with_a_400(body):
    try:
        req = translate_request(body, MODEL)
    except GatewayError as err:
        assert err.status == 400
    else:
        assert isinstance(req.responses["input"], list) and len(req.dropped) <= 32
