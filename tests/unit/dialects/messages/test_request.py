"""Anthropic Messages request -> Responses request: one row per mapping rule,
then replays of real Claude Code 2.1.332 requests.

The fixtures ``claude-code-2.1-*.json`` are trimmed copies of the shared
captures: strings longer than 120 characters are cut (``metadata.user_id``
and signatures are kept whole) and only the headers the translator reads are
kept. Cutting is a prefix, so equal texts stay equal.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from gateway.continuity import conversation_fingerprint
from gateway.dialects.messages.count_tokens import count_tokens
from gateway.dialects.messages.count_tokens import estimate_input_tokens
from gateway.dialects.messages.session import client_authorization, session_signal
from gateway.dialects.messages.request import translate_request
from gateway.dialects.messages.signature import encode_signature
from gateway.errors import GatewayError
from gateway.dialects.tools import shorten_tool_name
from gateway.dialects.tools import stable_call_id
from tests.support import FIXTURES

MODEL = "claude-opus-5-5"
USER = {"role": "user", "content": "hi"}
USER_ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
SIG = encode_signature({"id": "rs_1", "encrypted_content": "gAAAA-enc"})
LONG = "mcp__some_server__" + "x" * 80
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}


def tr(*messages, headers=None, **extra):
    return translate_request({"model": MODEL, "messages": list(messages) or [USER], **extra},
                             headers or {})


def user(*blocks):
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks):
    return {"role": "assistant", "content": list(blocks)}


def msg(role, *parts):
    return {"type": "message", "role": role, "content": list(parts)}


def itext(text):
    return {"type": "input_text", "text": text}


def otext(text):
    return {"type": "output_text", "text": text}


def text(t, **extra):
    return {"type": "text", "text": t, **extra}


def use(call_id, name="Read", inp=None):
    return {"type": "tool_use", "id": call_id, "name": name, "input": inp if inp is not None else {"p": 1}}


def call(call_id, name="Read", args='{"p":1}'):
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": args}


def result(call_id, content="ok", **extra):
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


def output(call_id, out="ok"):
    return {"type": "function_call_output", "call_id": call_id, "output": out}


PNG = {"type": "base64", "media_type": "image/png", "data": "AAAA"}

# --- messages -> input ---------------------------------------------------------------

MESSAGES = [
    ("user string", [USER], [USER_ITEM]),
    ("user text blocks", [user(text("a"), text("b"))], [msg("user", itext("a"), itext("b"))]),
    ("cache_control ignored", [user(text("hi", cache_control={"type": "ephemeral"}))], [USER_ITEM]),
    ("single block equals plain string", [user(text("hi"))], [USER_ITEM]),
    ("empty text block skipped", [user(text(""), text("hi"))], [USER_ITEM]),
    ("string inside a block list", [{"role": "user", "content": ["hi"]}], [USER_ITEM]),
    ("image base64", [user({"type": "image", "source": PNG})],
     [msg("user", {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"})]),
    ("image url", [user({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}})],
     [msg("user", {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"})]),
    ("image file", [user({"type": "image", "source": {"type": "file", "file_id": "file_1"}})],
     [msg("user", {"type": "input_image", "file_id": "file_1", "detail": "auto"})]),
    ("document pdf base64", [user({"type": "document", "title": "a.pdf", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBER"}})],
     [msg("user", {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"})]),
    ("document pdf without title", [user({"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBER"}})],
     [msg("user", {"type": "input_file", "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBER"})]),
    ("document plain text", [user({"type": "document", "source": {
        "type": "text", "media_type": "text/plain", "data": "notes"}})], [msg("user", itext("notes"))]),
    ("document url", [user({"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}})],
     [msg("user", {"type": "input_file", "file_url": "https://x/a.pdf"})]),
    ("document file", [user({"type": "document", "source": {"type": "file", "file_id": "file_2"}})],
     [msg("user", {"type": "input_file", "file_id": "file_2"})]),
    ("document content blocks", [user({"type": "document", "source": {
        "type": "content", "content": [text("p1"), {"type": "image", "source": PNG}]}})],
     [msg("user", itext("p1"), {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"})]),
    ("search result", [user({"type": "search_result", "title": "T", "source": "https://s",
                             "content": [text("body")]})], [msg("user", itext("T\nhttps://s\nbody"))]),
    ("system role message in place", [USER, {"role": "system", "content": "# Environment"}],
     [USER_ITEM, msg("developer", itext("# Environment"))]),
    ("system role blocks == string", [USER, {"role": "system", "content": [text("# Environment", cache_control={"type": "ephemeral"})]}],
     [USER_ITEM, msg("developer", itext("# Environment"))]),
    ("developer role", [USER, {"role": "developer", "content": "d"}], [USER_ITEM, msg("developer", itext("d"))]),
    ("assistant string", [USER, {"role": "assistant", "content": "hello"}], [USER_ITEM, msg("assistant", otext("hello"))]),
    ("assistant text blocks", [USER, assistant(text("a"), text("b"))], [USER_ITEM, msg("assistant", otext("a"), otext("b"))]),
    ("assistant empty text skipped", [USER, assistant(text(""))], [USER_ITEM]),
    ("tool_use -> function_call", [USER, assistant(text("look"), use("toolu_1"))],
     [USER_ITEM, msg("assistant", otext("look")), call("toolu_1")]),
    ("tool_use input key order and unicode kept",
     [USER, assistant(use("t1", inp={"z": "é", "a": [1, 2]}))], [USER_ITEM, call("t1", args='{"z":"é","a":[1,2]}')]),
    ("tool_use with call_ id prefix echoed", [USER, assistant(use("call_abc"))], [USER_ITEM, call("call_abc")]),
    ("tool_use without input", [USER, assistant({"type": "tool_use", "id": "t1", "name": "Read"})],
     [USER_ITEM, call("t1", args="{}")]),
    ("tool_result string", [USER, assistant(use("t1")), user(result("t1", "1\thello"))],
     [USER_ITEM, call("t1"), output("t1", "1\thello")]),
    ("tool_result text blocks joined", [USER, assistant(use("t1")), user(result("t1", [text("a"), text("b")]))],
     [USER_ITEM, call("t1"), output("t1", "a\nb")]),
    ("tool_result image keeps parts", [USER, assistant(use("t1")),
                                       user(result("t1", [text("see"), {"type": "image", "source": PNG}]))],
     [USER_ITEM, call("t1"), output("t1", [itext("see"), {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}])]),
    ("tool_result is_error string", [USER, assistant(use("t1")), user(result("t1", "File does not exist.", is_error=True))],
     [USER_ITEM, call("t1"), output("t1", "Error: File does not exist.")]),
    ("tool_result is_error false unchanged", [USER, assistant(use("t1")), user(result("t1", "ok", is_error=False))],
     [USER_ITEM, call("t1"), output("t1", "ok")]),
    ("tool_result is_error blocks", [USER, assistant(use("t1")), user(result("t1", [{"type": "image", "source": PNG}], is_error=True))],
     [USER_ITEM, call("t1"), output("t1", [itext("Error:"), {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}])]),
    ("tool_result without content", [USER, assistant(use("t1")), user({"type": "tool_result", "tool_use_id": "t1"})],
     [USER_ITEM, call("t1"), output("t1", "")]),
    ("parallel results put back in call order",
     [USER, assistant(use("a"), use("b")), user(result("b", "B", is_error=True), result("a", "A"))],
     [USER_ITEM, call("a"), call("b"), output("a", "A"), output("b", "Error: B")]),
    ("text after results follows the outputs",
     [USER, assistant(use("a")), user(result("a", "A"), text("next"))],
     [USER_ITEM, call("a"), output("a", "A"), msg("user", itext("next"))]),
    ("result for an unknown call becomes user text", [USER, user(result("ghost", "G"))],
     [USER_ITEM, msg("user", itext("Tool result (ghost):\nG"))]),
    ("tool_reference inside a result", [USER, assistant(use("s", "ToolSearch")),
                                        user(result("s", [{"type": "tool_reference", "tool_name": "WebFetch"}]))],
     [USER_ITEM, call("s", "ToolSearch"), output("s", "Tool WebFetch is now available.")]),
    ("gateway-signed thinking -> reasoning item",
     [USER, assistant({"type": "thinking", "thinking": "plan", "signature": SIG}, use("t1")), user(result("t1"))],
     [USER_ITEM, {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "plan"}],
                  "encrypted_content": "gAAAA-enc"}, call("t1"), output("t1")]),
    ("omitted thinking text -> empty summary",
     [USER, assistant({"type": "thinking", "thinking": "", "signature": SIG}, text("ok"))],
     [USER_ITEM, {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-enc"},
      msg("assistant", otext("ok"))]),
    ("foreign thinking dropped", [USER, assistant({"type": "thinking", "thinking": "x", "signature": "PROBE_SIG_1"}, text("ok"))],
     [USER_ITEM, msg("assistant", otext("ok"))]),
    ("redacted thinking dropped", [USER, assistant({"type": "redacted_thinking", "data": "zzz"}, text("ok"))],
     [USER_ITEM, msg("assistant", otext("ok"))]),
    ("unknown block dropped, rest kept", [user({"type": "container_upload", "file_id": "f"}, text("hi"))], [USER_ITEM]),
]


@pytest.mark.parametrize("messages,expected", [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES])
def test_messages_to_input(messages, expected):
    assert tr(*messages).responses["input"] == expected


def test_stable_ids_for_tool_use_without_id():
    messages = [USER, assistant({"type": "tool_use", "name": "Read", "input": {"p": 1}})]
    first = tr(*messages).responses["input"][1]
    assert first["call_id"] == stable_call_id(1, 0, "Read", '{"p":1}')
    assert first["call_id"].startswith("call_")
    assert tr(*messages).responses["input"][1] == first


# --- system ----------------------------------------------------------------------------

BILLING = text("x-anthropic-billing-header: cc_version=2.1.332.0b8; cc_entrypoint=sdk-cli;")
SYSTEM = [
    ("string", "be brief", [msg("developer", itext("be brief"))]),
    ("blocks, cache_control ignored", [text("a", cache_control={"type": "ephemeral"}), text("b")],
     [msg("developer", itext("a"), itext("b"))]),
    ("billing header block dropped", [BILLING, text("You are a Claude agent")],
     [msg("developer", itext("You are a Claude agent"))]),
    ("billing header only", [BILLING], []),
    ("billing header line in a string", "x-anthropic-billing-header: cc_version=1;\nYou are", [msg("developer", itext("You are"))]),
    ("empty string", "", []),
]


@pytest.mark.parametrize("system,expected", [s[1:] for s in SYSTEM], ids=[s[0] for s in SYSTEM])
def test_system(system, expected):
    req = tr(USER, system=system)
    assert req.responses["instructions"] == ""
    assert req.responses["input"] == expected + [USER_ITEM]
    assert req.dropped == []


def test_billing_header_variants_give_the_same_request():
    a = tr(USER, system=[BILLING, text("S")]).responses
    b = tr(USER, system=[text("x-anthropic-billing-header: cc_version=2.1.332.ce7; cc_entrypoint=cli;"), text("S")]).responses
    assert a == b


# --- parameters --------------------------------------------------------------------------

PARAMS = [
    # (id, extra body, expected responses subset, keys that must be absent, dropped)
    ("no thinking: no reasoning", {}, {"include": ["reasoning.encrypted_content"]}, ["reasoning"], []),
    ("adaptive thinking: summary", {"thinking": {"type": "adaptive", "display": "omitted"}},
     {"reasoning": {"summary": "auto"}}, [], []),
    ("enabled small budget: low", {"thinking": {"type": "enabled", "budget_tokens": 2000}},
     {"reasoning": {"effort": "low", "summary": "auto"}}, [], []),
    ("enabled mid budget: medium", {"thinking": {"type": "enabled", "budget_tokens": 8000}},
     {"reasoning": {"effort": "medium", "summary": "auto"}}, [], []),
    ("enabled big budget: high", {"thinking": {"type": "enabled", "budget_tokens": 32000}},
     {"reasoning": {"effort": "high", "summary": "auto"}}, [], []),
    ("disabled thinking", {"thinking": {"type": "disabled"}}, {}, ["reasoning"], []),
    ("unknown thinking type dropped", {"thinking": {"type": "telepathy"}}, {}, ["reasoning"], ["thinking"]),
    ("effort", {"output_config": {"effort": "medium"}}, {"reasoning": {"effort": "medium"}}, [], []),
    ("effort wins over budget", {"thinking": {"type": "enabled", "budget_tokens": 2000}, "output_config": {"effort": "high"}},
     {"reasoning": {"effort": "high", "summary": "auto"}}, [], []),
    ("effort max -> xhigh", {"output_config": {"effort": "max"}}, {"reasoning": {"effort": "xhigh"}}, [], []),
    ("unknown effort dropped", {"output_config": {"effort": "ludicrous"}}, {}, ["reasoning"], ["output_config.effort"]),
    ("unknown output_config key dropped", {"output_config": {"effort": "low", "task_budget": 5}},
     {"reasoning": {"effort": "low"}}, [], ["output_config.task_budget"]),
    ("effort none: no summary", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "none"}},
     {"reasoning": {"effort": "none"}}, [], []),
    ("output_config.format json_schema", {"output_config": {"format": {"type": "json_schema", "schema": {"$schema": "x", **SCHEMA}}}},
     {"text": {"format": {"type": "json_schema", "name": "output", "schema": SCHEMA}}}, [], []),
    ("legacy output_format", {"output_format": {"type": "json_schema", "schema": SCHEMA}},
     {"text": {"format": {"type": "json_schema", "name": "output", "schema": SCHEMA}}}, [], []),
    ("unknown format dropped", {"output_config": {"format": {"type": "yaml"}}}, {}, ["text"], ["output_config.format"]),
    ("max_tokens -> max_output_tokens", {"max_tokens": 128000}, {"max_output_tokens": 128000}, [], []),
    ("temperature and top_p copied", {"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}, [], []),
    ("max_tokens of the wrong type dropped", {"max_tokens": "lots"}, {}, ["max_output_tokens"], ["max_tokens"]),
    ("max_tokens zero dropped", {"max_tokens": 0}, {}, ["max_output_tokens"], ["max_tokens"]),
    ("temperature of the wrong type dropped", {"temperature": "warm", "top_p": True}, {}, ["temperature", "top_p"],
     ["temperature", "top_p"]),
    ("top_k dropped", {"top_k": 5}, {}, ["top_k"], ["top_k"]),
    ("service_tier auto ignored", {"service_tier": "auto"}, {}, ["service_tier"], []),
    ("service_tier other dropped", {"service_tier": "standard_only"}, {}, ["service_tier"], ["service_tier"]),
    ("metadata read, not forwarded", {"metadata": {"user_id": "u1"}}, {}, ["metadata", "user"], []),
    ("context_management dropped", {"context_management": {"edits": []}}, {}, ["context_management"], ["context_management"]),
    ("safeguards dropped", {"safeguards": [{"type": "dangerous_tool_use"}]}, {}, ["safeguards"], ["safeguards"]),
    ("stream flag not forwarded", {"stream": True}, {}, ["stream", "store", "prompt_cache_key"], []),
    ("stop_sequences not forwarded", {"stop_sequences": ["END"]}, {}, ["stop", "stop_sequences"], []),
]


@pytest.mark.parametrize("extra,subset,absent,dropped", [p[1:] for p in PARAMS], ids=[p[0] for p in PARAMS])
def test_parameters(extra, subset, absent, dropped):
    req = tr(USER, **extra)
    for key, value in subset.items():
        assert req.responses[key] == value
    for key in absent:
        assert key not in req.responses
    assert req.dropped == dropped
    assert req.responses["model"] == MODEL


def test_message_level_effort_overrides_top_level():
    req = tr(USER, {"role": "system", "content": "env", "output_config": {"effort": "low"}},
             output_config={"effort": "high"})
    assert req.responses["reasoning"] == {"effort": "low"}
    assert req.dropped == []


def test_latest_message_level_effort_wins():
    req = tr({**USER, "output_config": {"effort": "high"}}, {"role": "assistant", "content": "a"},
             {"role": "user", "content": "b", "output_config": {"effort": "minimal"}})
    assert req.responses["reasoning"] == {"effort": "minimal"}


def test_max_tokens_alias_for_dropped_params():
    assert tr(USER, max_tokens=10).param_aliases == {"max_output_tokens": "max_tokens"}


def test_model_is_not_mapped():
    assert tr(USER).model == MODEL
    assert translate_request({"model": "gpt-5.4", "messages": [USER]}).responses["model"] == "gpt-5.4"


STREAM = [(True, True), (False, False), (None, False), ("true", False), (1, False)]


@pytest.mark.parametrize("value,expected", STREAM)
def test_stream_flag(value, expected):
    assert tr(USER, stream=value).stream is expected


STOPS = [
    (None, [], []),
    (["END", "STOP"], ["END", "STOP"], []),
    (["a", "a"], ["a"], []),
    (["a", "", 3], ["a"], ["stop_sequences"]),
    ("END", [], ["stop_sequences"]),
    ([f"s{i}" for i in range(10)], [f"s{i}" for i in range(10)], []),
]


@pytest.mark.parametrize("value,stop,dropped", STOPS)
def test_stop_sequences(value, stop, dropped):
    req = tr(USER, stop_sequences=value)
    assert (req.stop, req.dropped) == (stop, dropped)


@pytest.mark.parametrize("thinking,effort,shown", [
    ({"type": "adaptive"}, None, True),
    ({"type": "enabled", "budget_tokens": 1024}, None, True),
    ({"type": "disabled"}, None, False),
    (None, "high", False),
    ({"type": "adaptive"}, "none", False),
])
def test_thinking_blocks_shown_only_when_asked(thinking, effort, shown):
    extra = {"thinking": thinking} if thinking else {}
    if effort:
        extra["output_config"] = {"effort": effort}
    assert tr(USER, **extra).thinking is shown


# --- tools ---------------------------------------------------------------------------------

def tool(name, **extra):
    return {"name": name, "description": f"{name} tool", "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema", **SCHEMA, "additionalProperties": False}, **extra}


def fn(name, **extra):
    return {"type": "function", "name": name, "description": f"{name} tool",
            "parameters": {**SCHEMA, "additionalProperties": False}, "strict": False, **extra}


PLACEHOLDER = {"name": "DeferredToolPlaceholder", "description": "never call this tool.",
               "input_schema": {"type": "object", "properties": {}}, "defer_loading": True}

TOOLS = [
    ("custom tool -> function, $schema dropped", [tool("Read")], [fn("Read")], []),
    ("type custom", [tool("Read", type="custom")], [fn("Read")], []),
    ("cache_control ignored", [tool("Read", cache_control={"type": "ephemeral"})], [fn("Read")], []),
    ("strict honoured", [tool("Read", strict=True)], [fn("Read", strict=True)], []),
    ("no schema: empty object", [{"name": "Ping"}],
     [{"type": "function", "name": "Ping", "parameters": {"type": "object", "properties": {}}, "strict": False}], []),
    ("defer_loading placeholder not offered", [tool("Read"), PLACEHOLDER], [fn("Read")], []),
    ("unknown tool key reported", [tool("Read", input_examples=[{}])], [fn("Read")], ["tools.input_examples"]),
    ("server web search -> web_search", [{"type": "web_search_20250305", "name": "web_search",
                                          "allowed_domains": ["a.com"], "max_uses": 3,
                                          "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}],
     [{"type": "web_search", "filters": {"allowed_domains": ["a.com"]},
       "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}], ["tools.max_uses"]),
    ("bash tool dropped", [{"type": "bash_20250124", "name": "bash"}, tool("Read")], [fn("Read")], ["tools.bash_20250124"]),
    ("text editor dropped", [{"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}], [],
     ["tools.text_editor_20250728"]),
    ("tool without a name dropped", [{"description": "?"}], [], ["tools.invalid"]),
    ("not a list dropped", {"Read": {}}, [], ["tools"]),
    ("long name shortened", [tool(LONG)], [fn(shorten_tool_name(LONG), description=f"{LONG} tool")], []),
]


@pytest.mark.parametrize("tools,expected,dropped", [t[1:] for t in TOOLS], ids=[t[0] for t in TOOLS])
def test_tools(tools, expected, dropped):
    req = tr(USER, tools=tools)
    assert req.responses.get("tools", []) == expected
    assert req.dropped == dropped
    if expected:
        assert req.responses["parallel_tool_calls"] is True
    else:
        assert "parallel_tool_calls" not in req.responses


def test_deferred_tool_offered_once_a_tool_reference_loads_it():
    web = tool("WebFetch", defer_loading=True)
    before = tr(USER, tools=[tool("ToolSearch"), web, PLACEHOLDER])
    assert [t["name"] for t in before.responses["tools"]] == ["ToolSearch"]
    after = tr(USER, assistant(use("s", "ToolSearch")),
               user(result("s", [{"type": "tool_reference", "tool_name": "WebFetch"}])),
               tools=[tool("ToolSearch"), web, PLACEHOLDER])
    assert [t["name"] for t in after.responses["tools"]] == ["ToolSearch", "WebFetch"]


def test_web_search_asks_for_sources():
    req = tr(USER, tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert req.responses["include"] == ["reasoning.encrypted_content", "web_search_call.action.sources"]


def test_long_names_shortened_everywhere_and_restorable():
    req = tr(USER, assistant(use("t1", LONG)), user(result("t1")),
             tools=[tool(LONG)], tool_choice={"type": "tool", "name": LONG})
    short = shorten_tool_name(LONG)
    assert len(short) == 64
    assert req.responses["tools"][0]["name"] == short
    assert req.responses["input"][1]["name"] == short
    assert req.responses["tool_choice"] == {"type": "function", "name": short}
    assert req.tool_names == {short: LONG}


TOOL_CHOICE = [
    ("auto", {"type": "auto"}, "auto", True, []),
    ("any -> required", {"type": "any"}, "required", True, []),
    ("tool -> function", {"type": "tool", "name": "Read"}, {"type": "function", "name": "Read"}, True, []),
    ("none", {"type": "none"}, "none", True, []),
    ("disable parallel", {"type": "auto", "disable_parallel_tool_use": True}, "auto", False, []),
    ("unknown tool name dropped", {"type": "tool", "name": "Nope"}, None, True, ["tool_choice"]),
    ("unknown type dropped", {"type": "telepathy"}, None, True, ["tool_choice"]),
    ("string dropped", "auto", None, True, ["tool_choice"]),
]


@pytest.mark.parametrize("choice,expected,parallel,dropped", [c[1:] for c in TOOL_CHOICE], ids=[c[0] for c in TOOL_CHOICE])
def test_tool_choice(choice, expected, parallel, dropped):
    req = tr(USER, tools=[tool("Read")], tool_choice=choice)
    assert req.responses.get("tool_choice") == expected
    assert req.responses["parallel_tool_calls"] is parallel
    assert req.dropped == dropped


def test_tool_choice_any_without_tools_is_dropped():
    req = tr(USER, tool_choice={"type": "any"})
    assert "tool_choice" not in req.responses
    assert req.dropped == ["tool_choice"]


# --- dropped, betas, never a 400 ------------------------------------------------------------

DROPPED = [
    ("unknown top-level field", {"container": "c1", "mcp_servers": []}, [USER], {}, ["container", "mcp_servers"]),
    ("unknown message key", {}, [{**USER, "name": "bob"}], {}, ["messages.name"]),
    ("message cache_control ignored", {}, [{**USER, "cache_control": {"type": "ephemeral"}}], {}, []),
    ("unknown block", {}, [user({"type": "mcp_tool_use", "id": "m"}, text("hi"))], {}, ["content.mcp_tool_use"]),
    ("non-object block", {}, [user(7, text("hi"))], {}, ["content.invalid"]),
    ("text block without text", {}, [user({"type": "text"}, text("hi"))], {}, ["content.text"]),
    ("image with unknown source", {}, [user({"type": "image", "source": {"type": "s3"}}, text("hi"))], {},
     ["content.image.source"]),
    ("foreign thinking", {}, [USER, assistant({"type": "thinking", "thinking": "t", "signature": "abc"})], {},
     ["content.thinking"]),
    ("thinking signed but without encrypted content", {},
     [USER, assistant({"type": "thinking", "thinking": "t", "signature": encode_signature({"id": "rs_9"})})], {},
     ["content.thinking"]),
    ("server tool blocks from history", {},
     [USER, assistant({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
                      {"type": "web_search_tool_result", "tool_use_id": "s", "content": []}, text("ok"))], {},
     ["content.server_tool_use", "content.web_search_tool_result"]),
    ("known betas are silent", {}, [USER], {"anthropic-beta": (
        "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
        "per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,"
        "advanced-tool-use-2025-11-20,effort-2025-11-24,fine-grained-tool-streaming-2025-05-14")}, []),
    ("unknown betas reported", {}, [USER], {"Anthropic-Beta": "afk-mode-2026-01-31, thinking-token-count-2026-05-13,x"},
     ["beta:afk-mode-2026-01-31", "beta:x"]),
    ("unsafe names sanitised", {"bad\r\nname, x": 1}, [USER], {}, ["bad__name__x"]),
]


@pytest.mark.parametrize("extra,messages,headers,dropped", [d[1:] for d in DROPPED], ids=[d[0] for d in DROPPED])
def test_dropped(extra, messages, headers, dropped):
    assert tr(*messages, headers=headers, **extra).dropped == dropped


def test_dropped_list_is_bounded():
    req = tr(USER, **{f"field_{i}": i for i in range(100)})
    assert len(req.dropped) == 32
    assert req.dropped[-1] == "..."
    assert all(len(name) <= 64 for name in tr(USER, **{"y" * 500: 1}).dropped)


BAD = [
    ("not an object", ["x"], None),
    ("no model", {"messages": [USER]}, "model"),
    ("blank model", {"model": " ", "messages": [USER]}, "model"),
    ("model not a string", {"model": 5, "messages": [USER]}, "model"),
    ("no messages", {"model": MODEL}, "messages"),
    ("messages not a list", {"model": MODEL, "messages": "hi"}, "messages"),
    ("empty messages", {"model": MODEL, "messages": []}, "messages"),
    ("message not an object", {"model": MODEL, "messages": ["hi"]}, "messages[0]"),
    ("unknown role", {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ("content not string or list", {"model": MODEL, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("content missing", {"model": MODEL, "messages": [{"role": "user"}]}, "messages[0].content"),
]


@pytest.mark.parametrize("body,param", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests(body, param):
    with pytest.raises(GatewayError) as info:
        translate_request(body, {})
    assert info.value.status == 400
    assert info.value.type == "invalid_request_error"
    assert info.value.param == param


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=8)
_known = ("model", "messages")


_BLOCK_TYPES = ["text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
                "redacted_thinking", "tool_reference", "server_tool_use", "nope"]
_block = st.builds(
    lambda kind, rest: {**rest, "type": kind},
    st.sampled_from(_BLOCK_TYPES) | _json,
    st.dictionaries(st.sampled_from(["text", "source", "id", "name", "input", "content", "tool_use_id",
                                     "signature", "thinking", "is_error", "tool_name", "title"]),
                    _json | st.just(SIG) | st.builds(lambda k: {"type": k, "data": "AA", "url": "u"},
                                                     st.sampled_from(["base64", "url", "file", "text", "content"])),
                    max_size=4))


@settings(max_examples=300, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=12).filter(lambda k: k not in _known), _json, max_size=5),
       blocks=st.lists(_block | _json, max_size=5),
       role=st.sampled_from(["user", "assistant", "system"]),
       beta=st.text(max_size=30))
def test_never_a_400_for_unknown_fields_blocks_or_betas(extra, blocks, role, beta):
    body = {"model": MODEL, "messages": [USER, {"role": role, "content": blocks}], **extra}
    req = translate_request(body, {"anthropic-beta": beta})
    assert USER_ITEM in req.responses["input"]
    for name in req.dropped:
        assert name and len(name) <= 64 and "," not in name and "\n" not in name
    json.dumps(req.responses)


# --- session, client key ---------------------------------------------------------------------

UID = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s-meta"})
SESSIONS = [
    ("header", {"X-Claude-Code-Session-Id": "s-head"}, {}, "s-head"),
    ("header, any case", {"x-claude-code-session-id": "s-head"}, {}, "s-head"),
    ("header wins over metadata", {"X-Claude-Code-Session-Id": "s-head"}, {"user_id": UID}, "s-head"),
    ("metadata JSON string", {}, {"user_id": UID}, "s-meta"),
    ("pre-2.0 user_id string", {}, {"user_id": "user_" + "a" * 64 + "_account__session_0f0e0d0c-1111-2222-3333-444455556666"},
     "0f0e0d0c-1111-2222-3333-444455556666"),
    ("plain user id is not a session", {}, {"user_id": "alice"}, None),
    ("broken JSON user_id", {}, {"user_id": "{nope"}, None),
    ("blank header falls through", {"X-Claude-Code-Session-Id": "  "}, {"user_id": UID}, "s-meta"),
    ("agent appended", {"X-Claude-Code-Session-Id": "s-head", "x-claude-code-agent-id": "a65"}, {}, "s-head/a65"),
    ("agent appended to metadata session", {"x-claude-code-agent-id": "a65"}, {"user_id": UID}, "s-meta/a65"),
    ("agent alone is no session", {"x-claude-code-agent-id": "a65"}, {}, None),
    ("nothing", {}, {}, None),
]


@pytest.mark.parametrize("headers,metadata,session", [s[1:] for s in SESSIONS], ids=[s[0] for s in SESSIONS])
def test_session_signal(headers, metadata, session):
    extra = {"metadata": metadata} if metadata else {}
    req = tr(USER, headers=headers, **extra)
    assert req.session == session


AUTH = [
    ("x-api-key", {"x-api-key": "k1"}, "Bearer k1"),
    ("bearer", {"Authorization": "Bearer k2"}, "Bearer k2"),
    ("both: bearer wins", {"x-api-key": "k1", "Authorization": "Bearer k2"}, "Bearer k2"),
    ("non-bearer authorization, x-api-key used", {"x-api-key": "k1", "Authorization": "Basic zz"}, "Bearer k1"),
    ("non-bearer authorization alone passed on", {"Authorization": "Basic zz"}, "Basic zz"),
    ("none", {}, None),
]


@pytest.mark.parametrize("headers,expected", [a[1:] for a in AUTH], ids=[a[0] for a in AUTH])
def test_client_authorization(headers, expected):
    assert client_authorization(headers) == expected


# --- count_tokens ------------------------------------------------------------------------------

def test_count_tokens_estimate():
    assert count_tokens({"model": MODEL, "messages": [{"role": "user", "content": "x" * 400}]}) == {
        "input_tokens": 100 + 4}
    image = {"model": MODEL, "messages": [user({"type": "image", "source": {**PNG, "data": "A" * 100000}})]}
    assert count_tokens(image)["input_tokens"] == 1600 + 4
    with_tools = count_tokens({"model": MODEL, "messages": [USER], "tools": [tool("Read")]})
    assert with_tools["input_tokens"] > count_tokens({"model": MODEL, "messages": [USER]})["input_tokens"]


def test_count_tokens_grows_with_history():
    one = estimate_input_tokens(tr(USER).responses)
    two = estimate_input_tokens(tr(USER, assistant(use("t1")), user(result("t1", "y" * 80))).responses)
    assert two > one


# --- replays of real Claude Code 2.1.332 requests -------------------------------------------------

def _captures():
    out = []
    for name in ("claude-code-2.1-two-turns.json", "claude-code-2.1-more-requests.json"):
        for i, record in enumerate(json.loads((FIXTURES / name).read_text())):
            out.append(pytest.param(record, id=f"{name.split('-', 3)[-1][:-5]}[{i}]"))
    return out


CAPTURES = _captures()


@pytest.mark.parametrize("record", CAPTURES)
def test_every_captured_request_translates(record):
    req = translate_request(record["body"], record["headers"])
    rs = req.responses
    assert rs["model"] == record["body"]["model"]
    assert req.stream is record["body"]["stream"]
    assert req.session and req.session == session_signal({}, record["headers"])  # the header's
    texts = json.dumps(rs["input"])
    assert "x-anthropic-billing-header" not in texts
    names = [t["name"] for t in rs["tools"]]
    assert "DeferredToolPlaceholder" not in names
    assert all("$schema" not in t["parameters"] for t in rs["tools"])
    assert rs["reasoning"]["summary"] == "auto" and req.thinking
    assert rs["input"][0]["role"] == "developer"
    # what Claude Code sends that has no Responses equivalent is named, nothing else
    assert set(req.dropped) <= {"context_management", "safeguards", "content.thinking",
                                "beta:afk-mode-2026-01-31"}
    json.dumps(rs)


def _records(name):
    return json.loads((FIXTURES / name).read_text())


def test_continuity_signal_same_across_turns_of_a_session():
    two = _records("claude-code-2.1-two-turns.json")
    more = _records("claude-code-2.1-more-requests.json")
    by_session: dict = {}
    for record in two + more:
        req = translate_request(record["body"], record["headers"])
        metadata = json.loads(record["body"]["metadata"]["user_id"])
        # the header and the metadata session id agree
        assert req.session.split("/")[0] == metadata["session_id"]
        by_session.setdefault(metadata["session_id"], set()).add(req.session)
    # turn 1 and 2, tool round trip, thinking turns: one signal per session
    for i, j in ((0, 1), (4, 5)):
        assert translate_request(two[i]["body"], two[i]["headers"]).session == \
            translate_request(two[j]["body"], two[j]["headers"]).session
    sessions = [translate_request(r["body"], r["headers"]).session for r in more[5:8]]
    assert len(set(sessions)) == 1
    # new session in the same HOME, fresh HOME: new signals
    assert len({translate_request(r["body"], r["headers"]).session for r in two[:4]}) == 3
    # the subagent shares the session id but gets its own signal
    main, sub = (translate_request(more[k]["body"], more[k]["headers"]).session for k in (11, 12))
    assert sub == main + "/a6502b96c45296e96"


def test_without_a_session_the_conversation_fingerprint_is_stable_across_turns():
    two = _records("claude-code-2.1-two-turns.json")
    first, second = (translate_request(two[k]["body"], {}).responses for k in (0, 1))
    assert conversation_fingerprint(first) == conversation_fingerprint(second)
    other = translate_request(two[2]["body"], {}).responses
    assert conversation_fingerprint(other) != conversation_fingerprint(first)


def test_turn_two_input_extends_turn_one():
    two = _records("claude-code-2.1-two-turns.json")
    first, second = (translate_request(two[k]["body"], two[k]["headers"]).responses for k in (0, 1))
    # the system message changed from blocks to a string between turns: same items
    assert second["input"][:len(first["input"])] == first["input"]
    assert second["tools"] == first["tools"]


def test_captured_parallel_results_follow_call_order():
    record = _records("claude-code-2.1-more-requests.json")[9]
    items = translate_request(record["body"], record["headers"]).responses["input"]
    calls = [i["call_id"] for i in items if i["type"] == "function_call"]
    outputs = [i for i in items if i["type"] == "function_call_output"]
    assert [o["call_id"] for o in outputs] == calls
    assert outputs[1]["output"].startswith("Error: File does not exist.")


def test_captured_tool_round_trip():
    record = _records("claude-code-2.1-two-turns.json")[5]
    items = translate_request(record["body"], record["headers"]).responses["input"]
    assert items[-2]["type"] == "function_call" and items[-2]["name"] == "Read"
    assert json.loads(items[-2]["arguments"]) == {"file_path": "/home/dev/project/hello.txt"}
    assert items[-1] == {"type": "function_call_output", "call_id": items[-2]["call_id"],
                         "output": "1\thello from the probe\n2\t"}
