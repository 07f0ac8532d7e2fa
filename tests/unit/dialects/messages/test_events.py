"""Responses events -> Anthropic Messages SSE, the non-stream message, and the
Anthropic error shapes: one row per rule, plus a property test that every
stream is one Claude Code accepts (message_start first, blocks started before
their deltas, indexes in order, message_stop last)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from gateway.dialects.messages.errors import error_body
from gateway.dialects.messages.errors import error_frame
from gateway.dialects.messages.errors import error_headers
from gateway.dialects.messages.errors import error_status
from gateway.dialects.messages.events import PING
from gateway.dialects.messages.events import MessagesStreamTranslator
from gateway.dialects.messages.events import message_from_response
from gateway.dialects.messages.events import usage_from_response
from gateway.dialects.messages.request import translate_request
from gateway.dialects.messages.signature import decode_signature
from gateway.errors import GatewayError
from gateway.sse import Event
from gateway.sse import SSEParser
from gateway.sse import make_event

MODEL = "claude-opus-5-5"
USAGE = {"input_tokens": 1500, "input_tokens_details": {"cached_tokens": 1024},
         "output_tokens": 42, "output_tokens_details": {"reasoning_tokens": 10}, "total_tokens": 1542}
MAPPED_USAGE = {"input_tokens": 476, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1024, "output_tokens": 42,
                "output_tokens_details": {"thinking_tokens": 10}}
ZERO_USAGE = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens": 0}
REASONING = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Plan."}],
             "encrypted_content": "gAAAA-enc"}


def ev(kind, **payload):
    return make_event({"type": kind, **payload})


def created():
    return ev("response.created", response={"id": "resp_1", "status": "in_progress", "usage": None})


def completed(status="completed", usage=USAGE, **extra):
    kind = "response.completed" if status == "completed" else "response.incomplete"
    return ev(kind, response={"id": "resp_1", "status": status, "usage": usage, **extra})


def reasoning_events(index=0, text="Plan.", item=REASONING):
    where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
    return [ev("response.output_item.added", output_index=index, item={**item, "summary": [], "encrypted_content": None}),
            ev("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}),
            ev("response.reasoning_summary_text.delta", **where, delta=text),
            ev("response.reasoning_summary_text.done", **where, text=text),
            ev("response.output_item.done", output_index=index, item=item)]


def message_events(pieces, index=0, item_id="msg_1"):
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    full = "".join(pieces)
    item = {"id": item_id, "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": full, "annotations": []}]}
    return ([ev("response.output_item.added", output_index=index, item={**item, "content": []}),
             ev("response.content_part.added", **where, part={"type": "output_text", "text": ""})]
            + [ev("response.output_text.delta", **where, delta=p) for p in pieces]
            + [ev("response.output_text.done", **where, text=full),
               ev("response.output_item.done", output_index=index, item=item)])


def call_events(name="Read", args='{"file_path":"/x"}', index=0, item_id="fc_1", call_id="call_1", pieces=2):
    where = {"item_id": item_id, "output_index": index}
    item = {"id": item_id, "type": "function_call", "status": "completed", "call_id": call_id,
            "name": name, "arguments": args}
    size = max(1, len(args) // pieces)
    chunks = [args[i:i + size] for i in range(0, len(args), size)]
    return ([ev("response.output_item.added", output_index=index, item={**item, "arguments": ""})]
            + [ev("response.function_call_arguments.delta", **where, delta=c) for c in chunks]
            + [ev("response.function_call_arguments.done", **where, arguments=args),
               ev("response.output_item.done", output_index=index, item=item)])


def run(events, **kwargs):
    """Translate a whole stream; return the decoded (event, data) frames and the translator."""
    kwargs.setdefault("message_id", "msg_test")
    t = MessagesStreamTranslator(MODEL, **kwargs)
    raw = b"".join(b"".join(t.feed(e)) for e in events) + b"".join(t.close())
    return decode(raw), t


def decode(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for event in SSEParser().feed(raw):
        data = event.data
        assert data is not None and data["type"] == event.name, event
        out.append((event.name, data))
    return out


def shape(frames):
    """A compact view: event names with the block type / delta type / stop reason."""
    out = []
    for name, data in frames:
        if name == "content_block_start":
            out.append(f"start:{data['index']}:{data['content_block']['type']}")
        elif name == "content_block_delta":
            out.append(f"delta:{data['index']}:{data['delta']['type']}")
        elif name == "content_block_stop":
            out.append(f"stop:{data['index']}")
        elif name == "message_delta":
            out.append(f"message_delta:{data['delta']['stop_reason']}")
        else:
            out.append(name)
    return out


def deltas(frames, kind, field):
    return "".join(d["delta"][field] for n, d in frames if n == "content_block_delta" and d["delta"]["type"] == kind)


# --- whole streams ------------------------------------------------------------------------

def test_text_stream():
    frames, t = run([created(), *message_events(["Hel", "lo"]), completed()])
    assert shape(frames) == ["message_start", "start:0:text", "delta:0:text_delta", "delta:0:text_delta",
                             "stop:0", "message_delta:end_turn", "message_stop"]
    start = frames[0][1]["message"]
    assert start == {"id": "msg_test", "type": "message", "role": "assistant", "model": MODEL, "content": [],
                     "stop_reason": None, "stop_sequence": None, "usage": ZERO_USAGE}
    assert frames[1][1]["content_block"] == {"type": "text", "text": ""}
    assert deltas(frames, "text_delta", "text") == "Hello"
    assert frames[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": MAPPED_USAGE}
    assert t.done


def test_thinking_then_tool_use():
    frames, _ = run([created(), *reasoning_events(0), *call_events(index=1), completed()])
    assert shape(frames) == [
        "message_start", "start:0:thinking", "delta:0:thinking_delta", "delta:0:signature_delta", "stop:0",
        "start:1:tool_use", "delta:1:input_json_delta", "delta:1:input_json_delta", "stop:1",
        "message_delta:tool_use", "message_stop"]
    assert frames[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert deltas(frames, "thinking_delta", "thinking") == "Plan."
    signature = deltas(frames, "signature_delta", "signature")
    assert decode_signature(signature) == {"id": "rs_1", "encrypted_content": "gAAAA-enc"}
    assert frames[5][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "Read", "input": {}}
    assert json.loads(deltas(frames, "input_json_delta", "partial_json")) == {"file_path": "/x"}


def test_thinking_hidden_when_not_asked():
    frames, _ = run([created(), *reasoning_events(0), *message_events(["ok"], index=1), completed()],
                    thinking=False)
    assert shape(frames) == ["message_start", "start:0:text", "delta:0:text_delta", "stop:0",
                             "message_delta:end_turn", "message_stop"]


def test_summary_parts_are_separated():
    where = {"item_id": "rs_1", "output_index": 0}
    events = [created(), ev("response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning"}),
              ev("response.reasoning_summary_text.delta", **where, summary_index=0, delta="One."),
              ev("response.reasoning_summary_text.delta", **where, summary_index=1, delta="Two."),
              ev("response.output_item.done", output_index=0, item=REASONING), completed()]
    frames, _ = run(events)
    assert deltas(frames, "thinking_delta", "thinking") == "One.\n\nTwo."


def test_signature_is_echoed_back_as_a_reasoning_item():
    """The round trip Claude Code makes: thinking block out, same block in next turn."""
    frames, _ = run([created(), *reasoning_events(0), *call_events(index=1), completed()])
    block = {"type": "thinking", "thinking": deltas(frames, "thinking_delta", "thinking"),
             "signature": deltas(frames, "signature_delta", "signature")}
    body = {"model": MODEL, "messages": [
        {"role": "user", "content": "read"},
        {"role": "assistant", "content": [block, {"type": "tool_use", "id": "call_1", "name": "Read",
                                                  "input": {"file_path": "/x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "x"}]}]}
    items = translate_request(body, {}).responses["input"]
    assert items[1] == {"type": "reasoning", "id": "rs_1",
                        "summary": [{"type": "summary_text", "text": "Plan."}], "encrypted_content": "gAAAA-enc"}


def test_parallel_tool_calls_get_consecutive_blocks():
    events = [created(), *call_events(index=0), *call_events("Bash", '{"c":"ls"}', index=1, item_id="fc_2",
                                                             call_id="call_2"), completed()]
    frames, _ = run(events)
    starts = [d["content_block"] for n, d in frames if n == "content_block_start"]
    assert [(s["id"], s["name"]) for s in starts] == [("call_1", "Read"), ("call_2", "Bash")]
    assert shape(frames)[-2] == "message_delta:tool_use"


def test_items_done_without_deltas_are_sent_whole():
    msg = {"id": "msg_1", "type": "message", "role": "assistant",
           "content": [{"type": "output_text", "text": "whole"}]}
    fc = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "Read", "arguments": '{"a":1}'}
    events = [created(), ev("response.output_item.done", output_index=0, item=REASONING),
              ev("response.output_item.done", output_index=1, item=msg),
              ev("response.output_item.done", output_index=2, item=fc), completed()]
    frames, _ = run(events)
    assert shape(frames) == [
        "message_start", "start:0:thinking", "delta:0:thinking_delta", "delta:0:signature_delta", "stop:0",
        "start:1:text", "delta:1:text_delta", "stop:1", "start:2:tool_use", "delta:2:input_json_delta", "stop:2",
        "message_delta:tool_use", "message_stop"]
    assert deltas(frames, "text_delta", "text") == "whole"


def test_arguments_done_without_deltas():
    where = {"item_id": "fc_1", "output_index": 0}
    item = {"id": "fc_1", "type": "function_call", "call_id": "c", "name": "Read", "arguments": '{"a":1}'}
    events = [created(), ev("response.output_item.added", output_index=0, item={**item, "arguments": ""}),
              ev("response.function_call_arguments.done", **where, arguments='{"a":1}'),
              ev("response.output_item.done", output_index=0, item=item), completed()]
    frames, _ = run(events)
    assert deltas(frames, "input_json_delta", "partial_json") == '{"a":1}'


def test_long_tool_names_are_restored():
    frames, _ = run([created(), *call_events(name="short_1234"), completed()],
                    tool_names={"short_1234": "mcp__server__" + "x" * 80})
    start = next(d for n, d in frames if n == "content_block_start")
    assert start["content_block"]["name"] == "mcp__server__" + "x" * 80


def test_refusal():
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    frames, _ = run([created(), ev("response.refusal.delta", **where, delta="I can't."), completed()])
    assert deltas(frames, "text_delta", "text") == "I can't."
    assert shape(frames)[-2] == "message_delta:refusal"


def test_web_search_call_blocks():
    item = {"id": "ws_1", "type": "web_search_call", "status": "completed",
            "action": {"type": "search", "query": "weather paris",
                       "sources": [{"type": "url", "url": "https://w.example", "title": "W"}]}}
    frames, _ = run([created(), ev("response.output_item.done", output_index=0, item=item),
                     *message_events(["Sunny."], index=1), completed()])
    assert shape(frames) == ["message_start", "start:0:server_tool_use", "delta:0:input_json_delta", "stop:0",
                             "start:1:web_search_tool_result", "stop:1", "start:2:text", "delta:2:text_delta",
                             "stop:2", "message_delta:end_turn", "message_stop"]
    assert json.loads(deltas(frames, "input_json_delta", "partial_json")) == {"query": "weather paris"}
    result = frames[4][1]["content_block"]
    assert result["tool_use_id"] == "srvtoolu_ws_1"
    assert result["content"][0]["url"] == "https://w.example"
    assert frames[-2][1]["usage"]["server_tool_use"] == {"web_search_requests": 1}


# --- stop reasons and usage ---------------------------------------------------------------------

STOP_REASONS = [
    ("completed", [], completed(), "end_turn"),
    ("tool call", call_events(), completed(), "tool_use"),
    ("max output tokens", [], completed("incomplete", incomplete_details={"reason": "max_output_tokens"}), "max_tokens"),
    ("max output tokens during a tool call", call_events(),
     completed("incomplete", incomplete_details={"reason": "max_output_tokens"}), "max_tokens"),
    ("content filter", [], completed("incomplete", incomplete_details={"reason": "content_filter"}), "refusal"),
    ("other incomplete", [], completed("incomplete", incomplete_details={"reason": "other"}), "end_turn"),
]


@pytest.mark.parametrize("body,end,reason", [s[1:] for s in STOP_REASONS], ids=[s[0] for s in STOP_REASONS])
def test_stop_reasons(body, end, reason):
    frames, _ = run([created(), *body, end])
    assert shape(frames)[-2:] == [f"message_delta:{reason}", "message_stop"]


USAGES = [
    ("cached split out", USAGE, MAPPED_USAGE),
    ("no cache", {"input_tokens": 10, "output_tokens": 2}, {**ZERO_USAGE, "input_tokens": 10, "output_tokens": 2}),
    ("cached above input clamped", {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 50}, "output_tokens": 0},
     {**ZERO_USAGE, "cache_read_input_tokens": 10}),
    ("garbage numbers", {"input_tokens": "x", "input_tokens_details": None, "output_tokens": True}, ZERO_USAGE),
]


@pytest.mark.parametrize("usage,expected", [u[1:] for u in USAGES], ids=[u[0] for u in USAGES])
def test_usage_mapping(usage, expected):
    assert usage_from_response({"usage": usage}) == expected


def test_usage_missing_uses_the_start_estimate():
    frames, _ = run([created(), completed(usage=None)], input_tokens=321)
    assert frames[0][1]["message"]["usage"]["input_tokens"] == 321
    assert frames[-2][1]["usage"]["input_tokens"] == 321


# --- stop sequences ------------------------------------------------------------------------------

STOPS = [
    # (id, pieces, stop sequences, visible text, stop_reason, stop_sequence)
    ("no match", ["Hello", " world"], ["END"], "Hello world", "end_turn", None),
    ("match in one delta", ["Hello END rest"], ["END"], "Hello ", "stop_sequence", "END"),
    ("match across deltas", ["Hello E", "N", "D rest"], ["END"], "Hello ", "stop_sequence", "END"),
    ("held text released", ["Hello E", "x"], ["END"], "Hello Ex", "end_turn", None),
    ("held text flushed at the end", ["Hello EN"], ["END"], "Hello EN", "end_turn", None),
    ("earliest of several", ["a STOP b END"], ["END", "STOP"], "a ", "stop_sequence", "STOP"),
    ("match at the start", ["END"], ["END"], "", "stop_sequence", "END"),
]


@pytest.mark.parametrize("pieces,stop,visible,reason,sequence", [s[1:] for s in STOPS], ids=[s[0] for s in STOPS])
def test_stop_sequences(pieces, stop, visible, reason, sequence):
    frames, t = run([created(), *message_events(pieces), completed()], stop=stop)
    assert deltas(frames, "text_delta", "text") == visible
    delta = next(d for n, d in frames if n == "message_delta")
    assert delta["delta"] == {"stop_reason": reason, "stop_sequence": sequence}
    assert shape(frames)[-1] == "message_stop"
    assert t.stop_sequence == sequence
    assert [n for n, _ in frames].count("message_stop") == 1


def test_stop_sequence_ends_the_stream_early():
    t = MessagesStreamTranslator(MODEL, stop=["END"])
    events = [created(), *message_events(["a END b"]), completed()]
    out = [t.feed(e) for e in events[:4]]
    assert t.done
    assert all(t.feed(e) == [] for e in events[4:])
    assert t.close() == []
    assert b"message_stop" in b"".join(out[-1])


# --- failures, ping, robustness ---------------------------------------------------------------------

FAILURES = [
    ("response.failed rate limit", ev("response.failed", response={"error": {"code": "rate_limit_exceeded", "message": "slow"}}),
     "rate_limit_error", "slow"),
    ("response.failed overloaded", ev("response.failed", response={"error": {"code": "server_is_overloaded", "message": "busy"}}),
     "overloaded_error", "busy"),
    ("response.failed other", ev("response.failed", response={"error": {"code": "server_error", "message": "boom"}}),
     "api_error", "boom"),
    ("response.failed context", ev("response.failed", response={"error": {"code": "context_length_exceeded", "message": "long"}}),
     "invalid_request_error", "long"),
    ("error event", ev("error", code="stream_truncated", message="cut"), "api_error", "cut"),
    ("nested error event", ev("error", error={"code": "usage_limit_reached", "message": "quota"}), "rate_limit_error", "quota"),
    ("error without a message", ev("error", code="x"), "api_error", "upstream error (x)"),
]


@pytest.mark.parametrize("event,kind,message", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failures_become_error_frames(event, kind, message):
    frames, t = run([created(), *message_events(["part"])[:3], event, completed()])
    assert frames[-1] == ("error", {"type": "error", "error": {"type": kind, "message": message}})
    assert "message_stop" not in [n for n, _ in frames]
    assert t.done


def test_truncated_stream_ends_with_an_error_frame():
    frames, _ = run([created(), *message_events(["part"])[:3]])
    assert frames[-1][0] == "error"
    assert frames[-1][1]["error"]["type"] == "api_error"


def test_ping_sends_message_start_first():
    t = MessagesStreamTranslator(MODEL, message_id="msg_x")
    first = t.ping()
    assert [n for n, _ in decode(first)] == ["message_start", "ping"]
    assert t.ping() == PING
    assert t.feed(created()) == []  # message_start is not repeated


def test_malformed_and_unknown_events_are_ignored():
    t = MessagesStreamTranslator(MODEL)
    assert t.feed(Event("response.output_text.delta", "not json", b"")) == []
    assert t.feed(ev("response.output_text.delta", delta=5)) == []
    assert t.feed(ev("response.output_item.added", item="nope")) == []
    assert t.feed(ev("response.something_new", x=1)) == []
    assert t.feed(ev("response.function_call_arguments.delta", item_id="nope", delta="{")) == []


def test_late_delta_for_a_closed_block_is_dropped():
    events = [created(), *message_events(["a"]),
              ev("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0, delta="late"),
              completed()]
    frames, _ = run(events)
    assert deltas(frames, "text_delta", "text") == "a"


# A stream Claude Code accepts: message_start first; each block started once,
# in index order, before its deltas; nothing for a block after its stop; one
# message_delta then message_stop at the end (or an error frame).
_PIECES = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4)


@st.composite
def streams(draw):
    events = [created()]
    kinds = draw(st.lists(st.sampled_from(["reasoning", "text", "call", "search"]), max_size=5))
    for i, kind in enumerate(kinds):
        if kind == "reasoning":
            item = {**REASONING, "id": f"rs_{i}"}
            events += reasoning_events(i, draw(st.text(max_size=5)) or "r", item)
        elif kind == "text":
            events += message_events(draw(_PIECES), i, f"msg_{i}")
        elif kind == "call":
            events += call_events(index=i, item_id=f"fc_{i}", call_id=f"call_{i}")
        else:
            events.append(ev("response.output_item.done", output_index=i,
                             item={"id": f"ws_{i}", "type": "web_search_call", "action": {"query": "q"}}))
    if draw(st.booleans()):  # drop or duplicate some events: upstream quirks
        events = [e for e in events if draw(st.integers(0, 9)) > 0]
    ending = draw(st.sampled_from(["completed", "incomplete", "failed", "none"]))
    if ending == "completed":
        events.append(completed())
    elif ending == "incomplete":
        events.append(completed("incomplete", incomplete_details={"reason": "max_output_tokens"}))
    elif ending == "failed":
        events.append(ev("response.failed", response={"error": {"code": "server_error", "message": "x"}}))
    return events


@settings(max_examples=300, deadline=None)
@given(events=streams(), stop=st.lists(st.sampled_from(["ab", "x", "END"]), max_size=2),
       thinking=st.booleans())
def test_every_stream_is_well_formed(events, stop, thinking):
    frames, t = run(events, stop=stop, thinking=thinking)
    names = [n for n, _ in frames]
    assert t.done
    if names[-1] == "error":
        names = names[:-1]
    else:
        assert names[-2:] == ["message_delta", "message_stop"]
        names = names[:-2]
    assert names == [] or names[0] == "message_start"
    started, stopped = [], set()
    for name, data in frames:
        if name == "content_block_start":
            assert data["index"] == len(started)
            assert not started or started[-1] in stopped  # one block open at a time
            started.append(data["index"])
        elif name == "content_block_delta":
            assert data["index"] in started and data["index"] not in stopped
        elif name == "content_block_stop":
            assert data["index"] in started and data["index"] not in stopped
            stopped.add(data["index"])
        elif name in ("message_delta", "message_stop"):
            assert set(started) == stopped  # every block closed before the end
    if not thinking:
        assert all(d["content_block"]["type"] != "thinking" for n, d in frames if n == "content_block_start")


# --- non-streaming -------------------------------------------------------------------------------

FINAL = {
    "id": "resp_1", "status": "completed", "usage": USAGE,
    "output": [REASONING,
               {"id": "msg_1", "type": "message", "content": [{"type": "output_text", "text": "Hello"}]},
               {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "Read",
                "arguments": '{"file_path":"/x"}'}],
}


def test_message_from_response():
    message = message_from_response(FINAL, MODEL, message_id="msg_q")
    assert message == {
        "id": "msg_q", "type": "message", "role": "assistant", "model": MODEL,
        "content": [
            {"type": "thinking", "thinking": "Plan.", "signature": message["content"][0]["signature"]},
            {"type": "text", "text": "Hello"},
            {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"file_path": "/x"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": MAPPED_USAGE,
    }
    assert decode_signature(message["content"][0]["signature"]) == {"id": "rs_1", "encrypted_content": "gAAAA-enc"}


NON_STREAM = [
    ("thinking hidden", {"thinking": False}, FINAL, ["text", "tool_use"], "tool_use", None),
    ("stop sequence cuts and ends", {"stop": ["ll"]}, FINAL, ["thinking", "text"], "stop_sequence", "ll"),
    ("max tokens", {}, {**FINAL, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
                        "output": FINAL["output"][:2]}, ["thinking", "text"], "max_tokens", None),
    ("refusal", {}, {"output": [{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}]},
     ["text"], "refusal", None),
    ("empty", {}, {}, [], "end_turn", None),
    ("web search", {}, {"output": [{"id": "ws", "type": "web_search_call", "action": {"query": "q"}}]},
     ["server_tool_use", "web_search_tool_result"], "end_turn", None),
]


@pytest.mark.parametrize("kwargs,final,types,reason,sequence", [n[1:] for n in NON_STREAM], ids=[n[0] for n in NON_STREAM])
def test_non_stream_rules(kwargs, final, types, reason, sequence):
    message = message_from_response(final, MODEL, **kwargs)
    assert [b["type"] for b in message["content"]] == types
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


@pytest.mark.parametrize("arguments,expected", [
    ('{"a":1}', {"a": 1}), ("", {}), ("[1]", {"_arguments": "[1]"}), ("{bad", {"_arguments": "{bad"}),
])
def test_non_stream_tool_input(arguments, expected):
    final = {"output": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": arguments}]}
    assert message_from_response(final, MODEL)["content"][0]["input"] == expected


def test_non_stream_restores_tool_names():
    final = {"output": [{"type": "function_call", "call_id": "c", "name": "s_1", "arguments": "{}"}]}
    assert message_from_response(final, MODEL, tool_names={"s_1": "long"})["content"][0]["name"] == "long"


# --- errors --------------------------------------------------------------------------------------

ERRORS = [
    (GatewayError(400, "bad"), 400, "invalid_request_error"),
    (GatewayError(401, "key"), 401, "authentication_error"),
    (GatewayError(403, "no"), 403, "permission_error"),
    (GatewayError(404, "where"), 404, "not_found_error"),
    (GatewayError(413, "big"), 413, "request_too_large"),
    (GatewayError(429, "slow", retry_after=7), 429, "rate_limit_error"),
    (GatewayError(500, "oops"), 500, "api_error"),
    (GatewayError(502, "Upstream error 500: boom", code="upstream_error"), 502, "api_error"),
    (GatewayError(503, "no account", code="no_upstream_account"), 503, "api_error"),
    (GatewayError(504, "slow", code="upstream_timeout"), 504, "timeout_error"),
    (GatewayError(502, "Upstream error 503: The server is overloaded", code="upstream_error"), 529, "overloaded_error"),
    (GatewayError(502, "busy", code="server_is_overloaded"), 529, "overloaded_error"),
    (GatewayError(400, "model overloaded with options"), 400, "invalid_request_error"),
]


@pytest.mark.parametrize("err,status,kind", ERRORS, ids=[f"{e.status}-{e.message[:20]}" for e, _, _ in ERRORS])
def test_error_shapes(err, status, kind):
    assert error_status(err) == status
    assert error_body(err) == {"type": "error", "error": {"type": kind, "message": err.message}}
    assert decode(error_frame(err)) == [("error", error_body(err))]


def test_error_headers():
    assert error_headers(GatewayError(429, "slow", retry_after=7)) == {"retry-after": "7"}
    assert error_headers(GatewayError(400, "bad")) == {}
