"""Responses events -> Chat Completions chunks: one row per event type and rule."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from gateway.sse import Event
from gateway.sse import SSEParser
from gateway.sse import make_event
from gateway.dialects.chat.request import translate_request
from gateway.dialects.chat.events import DONE
from gateway.dialects.chat.events import ChatStreamTranslator
from gateway.dialects.chat.events import completion_from_response
from gateway.dialects.chat.events import usage_from_response

LONG = "mcp__server__" + "t" * 80
USAGE = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 64}, "output_tokens": 20,
         "output_tokens_details": {"reasoning_tokens": 7}, "total_tokens": 120}
CHAT_USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
              "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 7}}
COMPLETED = {"type": "response.completed", "response": {"status": "completed", "usage": USAGE}}


def text(delta, item="msg_1"):
    return {"type": "response.output_text.delta", "item_id": item, "output_index": 1, "content_index": 0, "delta": delta}


def summary(delta, index=0, item="rs_1"):
    return {"type": "response.reasoning_summary_text.delta", "item_id": item, "output_index": 0,
            "summary_index": index, "delta": delta}


def fc_added(name="f", item="fc_1", call="call_1", index=2, kind="function_call"):
    return {"type": "response.output_item.added", "output_index": index,
            "item": {"type": kind, "id": item, "call_id": call, "name": name, "status": "in_progress"}}


def fc_delta(delta, item="fc_1", index=2):
    return {"type": "response.function_call_arguments.delta", "item_id": item, "output_index": index, "delta": delta}


def fc_done_item(name="f", args="{}", item="fc_1", call="call_1", index=2):
    return {"type": "response.output_item.done", "output_index": index,
            "item": {"type": "function_call", "id": item, "call_id": call, "name": name, "arguments": args}}


def raw(text_: str, name: str = "") -> Event:
    return Event(name, text_, b"")


def run(events, **kw):
    kw.setdefault("include_usage", False)
    tr = ChatStreamTranslator("gpt-5", completion_id="chatcmpl-x", created=7, **kw)
    frames = []
    for e in events:
        frames += tr.feed(e if isinstance(e, Event) else make_event(e))
    return tr, frames


def decode(frames):
    out = []
    for f in frames:
        assert f.startswith(b"data: ") and f.endswith(b"\n\n"), f
        body = f[6:-2]
        out.append("[DONE]" if body == b"[DONE]" else json.loads(body))
    return out


def deltas(frames):
    """The deltas after the leading role chunk, and the finish reasons seen."""
    chunks = [c for c in decode(frames) if isinstance(c, dict) and c.get("choices")]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    return [c["choices"][0]["delta"] for c in chunks[1:] if c["choices"][0]["delta"]], \
        [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]


# --- one row per event type ------------------------------------------------------

EVENTS = [
    ("text delta", [text("Hel"), text("lo")], [{"content": "Hel"}, {"content": "lo"}]),
    ("empty text delta ignored", [text(""), text("a")], [{"content": "a"}]),
    ("summary delta", [summary("think")], [{"reasoning_content": "think"}]),
    ("summary parts separated", [summary("a"), summary("b"), summary("c", 1)],
     [{"reasoning_content": "a"}, {"reasoning_content": "b"}, {"reasoning_content": "\n\nc"}]),
    ("summary items separated", [summary("a"), summary("b", 0, "rs_2")],
     [{"reasoning_content": "a"}, {"reasoning_content": "\n\nb"}]),
    ("raw reasoning text", [{"type": "response.reasoning_text.delta", "item_id": "rs", "content_index": 0, "delta": "r"}],
     [{"reasoning_content": "r"}]),
    ("refusal delta", [{"type": "response.refusal.delta", "item_id": "m", "delta": "no"}], [{"refusal": "no"}]),
    ("tool call streamed", [fc_added(), fc_delta("{\"a\""), fc_delta(":1}"),
                            {"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": "{\"a\":1}"},
                            fc_done_item(args="{\"a\":1}")],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
      {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]},
      {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}]),
    ("args delta mapped by output_index", [fc_added(), {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{}"}],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
      {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}]),
    ("args done without deltas", [fc_added(), {"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": "{}"},
                                  fc_done_item()],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
      {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}]),
    ("item done fills missing args", [fc_added(), fc_done_item(args="{\"x\":1}")],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
      {"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":1}"}}]}]),
    ("item done never announced", [fc_done_item(args="{}")],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]),
    ("two calls get two indexes", [fc_added(), fc_added("g", "fc_2", "call_2", 3), fc_delta("1", "fc_2", 3)],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
      {"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
      {"tool_calls": [{"index": 1, "function": {"arguments": "1"}}]}]),
    ("custom tool call", [fc_added(kind="custom_tool_call"),
                          {"type": "response.custom_tool_call_input.delta", "item_id": "fc_1", "delta": "diff"}],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
      {"tool_calls": [{"index": 0, "function": {"arguments": "diff"}}]}]),
    ("shortened name restored", [fc_added("short_1")],
     [{"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": LONG, "arguments": ""}}]}]),
    ("other items ignored", [{"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "id": "rs"}},
                             {"type": "response.output_item.done", "output_index": 0, "item": {"type": "message", "content": []}},
                             text("a")], [{"content": "a"}]),
    ("unknown and bookkeeping events ignored", [
        {"type": "response.in_progress", "response": {}}, {"type": "codex.rate_limits", "primary": {}},
        {"type": "response.content_part.added", "part": {}}, {"type": "response.output_text.done", "text": "a"},
        {"type": "response.reasoning_summary_part.added"}, {"type": "something.new", "delta": "x"}, text("a")],
     [{"content": "a"}]),
    ("malformed payloads ignored", [
        raw("not json", "response.output_text.delta"), raw("[1,2]", "response.output_text.delta"),
        raw('{"delta": 5}', "response.output_text.delta"), raw("{}", "response.output_text.delta"),
        raw('{"item": "x"}', "response.output_item.added"), raw('{"item": {"type": "function_call", "id": ["x"]}}', "response.output_item.done"),
        raw('{"delta": "x", "item_id": ["unhashable"]}', "response.function_call_arguments.delta"),
        raw('{"type": "response.completed", "response": "x"', ""), text("a")],
     [{"content": "a"}]),
    ("args delta for unknown call ignored", [fc_delta("{}", "fc_9", 9), text("a")], [{"content": "a"}]),
]


@pytest.mark.parametrize("events, expected", [r[1:] for r in EVENTS], ids=[r[0] for r in EVENTS])
def test_event_mapping(events, expected):
    tr, frames = run([{"type": "response.created", "response": {}}, *events, COMPLETED],
                     tool_names={"short_1": LONG})
    got, finishes = deltas(frames)
    assert got == expected
    assert finishes == ["tool_calls" if any("tool_calls" in d for d in expected) else "stop"]
    assert tr.done and tr.close() == [DONE]


def test_every_chunk_carries_the_envelope():
    tr = ChatStreamTranslator("gpt-5", include_usage=True)
    frames = []
    for e in (text("a"), fc_added(), COMPLETED):
        frames += tr.feed(make_event(e))
    chunks = decode(frames)
    assert len(chunks) == 5  # role, content, tool call, finish, usage
    for c in chunks:
        assert c["id"] == tr.completion_id and c["id"].startswith("chatcmpl-")
        assert c["object"] == "chat.completion.chunk" and c["model"] == "gpt-5"
        assert isinstance(c["created"], int)
    assert all(len(c["choices"]) == 1 and c["choices"][0]["index"] == 0 for c in chunks[:4])
    assert all(f.startswith(b"data: {") and b": " not in f[6:] for f in frames)  # compact JSON


def test_role_chunk_comes_first_once():
    _, frames = run([{"type": "response.created", "response": {}}, {"type": "response.in_progress"}, text("a"), text("b")])
    roles = [c["choices"][0]["delta"].get("role") for c in decode(frames)]
    assert roles == ["assistant", None, None]
    _, frames = run([summary("x")])  # no response.created: role still first
    assert decode(frames)[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


# --- terminal events ----------------------------------------------------------------

TERMINALS = [
    ("completed", [], COMPLETED, True, "stop", CHAT_USAGE),
    ("completed after tool call", [fc_added()], COMPLETED, True, "tool_calls", CHAT_USAGE),
    ("completed without usage", [], {"type": "response.completed", "response": {}}, True, "stop", None),
    ("usage not requested", [], COMPLETED, False, "stop", None),
    ("cached absent means 0", [], {"type": "response.completed", "response": {"usage": {"input_tokens": 3, "output_tokens": 2}}}, True, "stop",
     {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "prompt_tokens_details": {"cached_tokens": 0},
      "completion_tokens_details": {"reasoning_tokens": 0}}),
    ("incomplete max_output_tokens", [], {"type": "response.incomplete", "response": {
        "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "usage": USAGE}}, True, "length", CHAT_USAGE),
    ("incomplete max_tokens", [fc_added()], {"type": "response.incomplete", "response": {
        "incomplete_details": {"reason": "max_tokens"}}}, True, "length", None),
    ("incomplete content_filter", [], {"type": "response.incomplete", "response": {
        "incomplete_details": {"reason": "content_filter"}}}, False, "content_filter", None),
    ("incomplete other", [], {"type": "response.incomplete", "response": {"incomplete_details": {"reason": "other"}}},
     False, "stop", None),
    ("incomplete without details", [], {"type": "response.incomplete", "response": {}}, False, "stop", None),
]


@pytest.mark.parametrize("before, terminal, include_usage, finish, usage", [r[1:] for r in TERMINALS],
                         ids=[r[0] for r in TERMINALS])
def test_terminal(before, terminal, include_usage, finish, usage):
    tr, frames = run([*before, terminal, text("late")], include_usage=include_usage)
    chunks = decode(frames)
    if usage is None:
        assert "usage" not in chunks[-1]
        last = chunks[-1]
    else:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage
        last = chunks[-2]
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": finish}
    assert tr.done and tr.feed(make_event(text("more"))) == []
    assert tr.close() == [DONE] and tr.close() == []


FAILURES = [
    ("response.failed", {"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "server_is_overloaded", "message": "busy"}}},
     {"message": "busy", "type": "overloaded_error", "code": "server_is_overloaded"}),
    ("response.failed without error", {"type": "response.failed", "response": {}},
     {"message": "upstream error (response_failed)", "type": "server_error", "code": "response_failed"}),
    ("error event", {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None},
     {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}),
    ("nested error event", {"type": "error", "error": {"type": "invalid_request_error", "code": "context_length_exceeded",
                                                        "message": "too long"}},
     {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}),
]


@pytest.mark.parametrize("event, error", [r[1:] for r in FAILURES], ids=[r[0] for r in FAILURES])
def test_failure_gives_error_frame_without_done(event, error):
    tr, frames = run([text("partial"), event, text("late"), COMPLETED], include_usage=True)
    chunks = decode(frames)
    assert chunks[-1] == {"error": error}
    assert tr.done and tr.close() == [] and tr.close() == []


def test_truncated_stream_is_an_error_not_done():
    tr, frames = run([text("partial")])
    assert not tr.done
    final = decode(tr.close())
    assert len(final) == 1 and final[0]["error"]["code"] == "stream_truncated"
    assert tr.done and tr.close() == []
    tr, _ = run([])
    assert decode(tr.close())[0]["error"]["code"] == "stream_truncated"


# --- stop sequences ------------------------------------------------------------------

STOPS = [
    ("no stop hit", ["END"], ["Hello", " world"], "Hello world", False),
    ("stop inside one delta", ["END"], ["abcENDxyz"], "abc", True),
    ("stop split across deltas", ["END"], ["abcE", "N", "Dxyz"], "abc", True),
    ("stop at delta start", ["END"], ["abc", "END"], "abc", True),
    ("stop at very start", ["END"], ["ENDabc"], "", True),
    ("false alarm prefix released", ["END"], ["abcE", "Nx", "yz"], "abcENxyz", False),
    ("held tail flushed at completion", ["END"], ["abcEN"], "abcEN", False),
    ("earliest of several stops", ["zz", "b"], ["aazbzz"], "aaz", True),
    ("single char stop", ["\n"], ["line1", "\nline2"], "line1", True),
    ("multibyte stop", ["。"], ["你好。再见"], "你好", True),
]


@pytest.mark.parametrize("stop, pieces, content, hit", [r[1:] for r in STOPS], ids=[r[0] for r in STOPS])
def test_stop_sequences(stop, pieces, content, hit):
    tr, frames = run([text(p) for p in pieces], stop=stop, include_usage=True)
    assert tr.done is hit
    if not hit:
        frames += tr.feed(make_event(COMPLETED))
    frames += tr.close()
    chunks = decode(frames)
    assert chunks[-1] == "[DONE]"
    got = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1] if isinstance(c, dict) and c["choices"])
    assert got == content
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["stop"]
    assert any("usage" in c for c in chunks[:-1]) is (not hit)  # usage unknown when we cut the stream


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abE", max_size=30), st.lists(st.integers(0, 30), max_size=6))
def test_stop_sequences_any_split(full, cuts):
    stop = ["bEa", "EE"]
    bounds = sorted({0, len(full), *(c for c in cuts if c <= len(full))})
    pieces = [full[a:b] for a, b in zip(bounds, bounds[1:])]
    tr, frames = run([text(p) for p in pieces] + [COMPLETED], stop=stop)
    got = "".join(c["choices"][0]["delta"].get("content", "") for c in decode(frames) if c["choices"])
    hits = [k for k in (full.find(s) for s in stop) if k >= 0]
    assert got == (full[: min(hits)] if hits else full)


# --- robustness ------------------------------------------------------------------------

_TYPES = ["response.created", "response.output_text.delta", "response.reasoning_summary_text.delta",
          "response.reasoning_text.delta", "response.refusal.delta", "response.output_item.added",
          "response.output_item.done", "response.function_call_arguments.delta",
          "response.function_call_arguments.done", "response.custom_tool_call_input.delta",
          "response.completed", "response.incomplete", "response.failed", "error", "x"]
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["delta", "item", "item_id", "output_index", "type", "id", "call_id", "name", "arguments",
                         "response", "usage", "error", "code", "message", "incomplete_details", "reason"]), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_TYPES), _json), max_size=8))
def test_garbage_never_raises(events):
    tr = ChatStreamTranslator("m", include_usage=True, stop=["zz"], tool_names={"a": "b"})
    frames = []
    for kind, payload in events:
        frames += tr.feed(Event(kind, json.dumps(payload), b""))
    frames += tr.close()
    assert tr.done
    for chunk in decode(frames):
        assert chunk == "[DONE]" or isinstance(chunk, dict)


def test_wire_roundtrip_through_parser():
    """Real SSE bytes (event: + data:) parsed by gateway.sse feed the translator."""
    wire = b"".join(make_event(e).raw for e in ({"type": "response.created", "response": {}}, text("hi"), COMPLETED))
    events = SSEParser().feed(wire)
    tr = ChatStreamTranslator("m", include_usage=True)
    frames = [f for e in events for f in tr.feed(e)] + tr.close()
    assert frames[-1] == DONE and decode(frames)[-2]["usage"] == CHAT_USAGE


def test_tool_name_round_trip_with_request():
    req = translate_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                             "tools": [{"type": "function", "function": {"name": LONG, "parameters": {}}}]})
    short = req.responses["tools"][0]["name"]
    _, frames = run([fc_added(short)], tool_names=req.tool_names)
    assert deltas(frames)[0][0]["tool_calls"][0]["function"]["name"] == LONG
    done = completion_from_response({"status": "completed", "output": [fc_done_item(short)["item"]]}, "m",
                                    tool_names=req.tool_names)
    assert done["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == LONG


# --- non-stream -------------------------------------------------------------------------

MSG = {"type": "message", "role": "assistant", "content": [
    {"type": "output_text", "text": "Hello", "annotations": []}, {"type": "output_text", "text": " there"}]}
MSG2 = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "!"}]}
RS = {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}],
      "encrypted_content": "zzz"}
FC = {"type": "function_call", "id": "fc", "call_id": "call_1", "name": "short_1", "arguments": "{\"a\":1}"}
FC_MSG = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": LONG, "arguments": "{\"a\":1}"}}]}

NONSTREAM = [
    ("all text parts of all messages", {"status": "completed", "output": [RS, MSG, MSG2]}, None,
     {"role": "assistant", "content": "Hello there!", "reasoning_content": "a\n\nb"}, "stop"),
    ("no text is null", {"status": "completed", "output": []}, None, {"role": "assistant", "content": None}, "stop"),
    ("tool calls restored", {"status": "completed", "output": [FC]}, None, FC_MSG, "tool_calls"),
    ("custom tool call", {"status": "completed", "output": [
        {"type": "custom_tool_call", "call_id": "c", "name": "p", "input": "diff"}]}, None,
     {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "p", "arguments": "diff"}}]},
     "tool_calls"),
    ("incomplete length", {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": [MSG]}, None,
     {"role": "assistant", "content": "Hello there"}, "length"),
    ("incomplete content filter", {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}, "output": []}, None,
     {"role": "assistant", "content": None}, "content_filter"),
    ("stop truncates", {"status": "completed", "output": [MSG, FC]}, [" th"], {"role": "assistant", "content": "Hello"}, "stop"),
    ("stop across items keeps earlier calls", {"status": "completed", "output": [FC, MSG, MSG2]}, ["e!"],
     {**FC_MSG, "content": "Hello ther"}, "stop"),
    ("stop not hit", {"status": "completed", "output": [MSG]}, ["zz"], {"role": "assistant", "content": "Hello there"}, "stop"),
    ("refusal", {"status": "completed", "output": [{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}]}, None,
     {"role": "assistant", "content": None, "refusal": "no"}, "stop"),
    ("garbage output tolerated", {"status": "completed", "output": ["x", {"type": "message", "content": [5, {"type": "output_text"}]}]},
     None, {"role": "assistant", "content": None}, "stop"),
]


@pytest.mark.parametrize("response, stop, message, finish", [r[1:] for r in NONSTREAM], ids=[r[0] for r in NONSTREAM])
def test_completion_from_response(response, stop, message, finish):
    out = completion_from_response({**response, "usage": USAGE}, "gpt-5", tool_names={"short_1": LONG}, stop=stop,
                                   completion_id="chatcmpl-1", created=5)
    assert out == {"id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "gpt-5",
                   "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                   "usage": CHAT_USAGE}


def test_completion_defaults():
    out = completion_from_response({"output": [MSG]}, "m")
    assert out["id"].startswith("chatcmpl-") and isinstance(out["created"], int) and "usage" not in out


USAGES = [
    ("full", {"usage": USAGE}, CHAT_USAGE),
    ("missing", {}, None),
    ("not a dict", {"usage": "x"}, None),
    ("no total", {"usage": {"input_tokens": 1, "output_tokens": 2}},
     {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "prompt_tokens_details": {"cached_tokens": 0},
      "completion_tokens_details": {"reasoning_tokens": 0}}),
    ("cache writes", {"usage": {"input_tokens": 1, "output_tokens": 0, "total_tokens": 1,
                                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1}}},
     {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1,
      "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1}, "completion_tokens_details": {"reasoning_tokens": 0}}),
]


@pytest.mark.parametrize("response, expected", [r[1:] for r in USAGES], ids=[r[0] for r in USAGES])
def test_usage_from_response(response, expected):
    assert usage_from_response(response) == expected
