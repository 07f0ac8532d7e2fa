"""Responses -> Gemini: the non-stream response and the stream (SSE and JSON array), one
row per rule; Google's error shape; the framing both Google SDKs can read."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dialects.gemini.errors import error_body, stream_error_frame
from gateway.dialects.gemini.events import GeminiStreamTranslator, response_from_final
from gateway.dialects.gemini.events import usage_metadata
from gateway.dialects.gemini.request import translate_request
from gateway.dialects.gemini.signature import decode_thought_signature
from gateway.errors import GatewayError
from gateway.sse import make_event

MODEL = "gemini-2.5-pro"
USAGE = {"input_tokens": 1500, "input_tokens_details": {"cached_tokens": 1024},
         "output_tokens": 42, "output_tokens_details": {"reasoning_tokens": 10}}
META = {"promptTokenCount": 1500, "candidatesTokenCount": 32, "totalTokenCount": 1542,
        "cachedContentTokenCount": 1024, "thoughtsTokenCount": 10}
REASONING = {"id": "rs_1", "type": "reasoning", "encrypted_content": "gAAAA-enc",
             "summary": [{"type": "summary_text", "text": "Plan."}]}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant",
           "content": [{"type": "output_text", "text": "Hello."}]}
CALL = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "get_weather",
        "arguments": '{"city":"Paris"}'}
SIGNATURE = {"id": "rs_1", "encrypted_content": "gAAAA-enc"}
FUNCTION_CALL = {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}}


def _final(*items, status="completed", **extra):
    return {"id": "resp_1", "status": status, "output": list(items), "usage": USAGE, **extra}


def _signed(part: dict) -> dict:
    """The part with its thoughtSignature decoded (so rows compare what it carries)."""
    part = dict(part)
    if "thoughtSignature" in part:
        part["thoughtSignature"] = decode_thought_signature(part["thoughtSignature"])
    return part


# (rule, output items and extras, translation options, expected parts, finishReason)
FINAL_RULES = [
    ("a message -> one text part", [MESSAGE], {}, {}, [{"text": "Hello."}], "STOP"),
    ("reasoning, thoughts asked -> thought part, then text with the signature",
     [REASONING, MESSAGE], {}, {"thoughts": True},
     [{"text": "Plan.", "thought": True}, {"text": "Hello.", "thoughtSignature": SIGNATURE}],
     "STOP"),
    ("reasoning, no thoughts asked -> only the signature, on the text",
     [REASONING, MESSAGE], {}, {}, [{"text": "Hello.", "thoughtSignature": SIGNATURE}], "STOP"),
    ("reasoning then a call -> the functionCall (id, args object) carries the signature",
     [REASONING, CALL], {}, {}, [{**FUNCTION_CALL, "thoughtSignature": SIGNATURE}], "STOP"),
    ("reasoning with nothing after it -> an empty text part carries the signature",
     [REASONING], {}, {}, [{"text": "", "thoughtSignature": SIGNATURE}], "STOP"),
    ("reasoning without encrypted content -> no signature",
     [{**REASONING, "encrypted_content": None}, MESSAGE], {}, {}, [{"text": "Hello."}], "STOP"),
    ("a shortened tool name -> restored",
     [{**CALL, "name": "short"}], {}, {"tool_names": {"short": "get_weather"}},
     [FUNCTION_CALL], "STOP"),
    ("arguments that are not an object -> kept under _arguments",
     [{**CALL, "arguments": "[1]"}], {}, {},
     [{"functionCall": {"id": "call_1", "name": "get_weather", "args": {"_arguments": "[1]"}}}],
     "STOP"),
    ("incomplete at max_output_tokens -> MAX_TOKENS",
     [MESSAGE], {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
     {}, [{"text": "Hello."}], "MAX_TOKENS"),
    ("incomplete by content_filter -> SAFETY",
     [MESSAGE], {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
     {}, [{"text": "Hello."}], "SAFETY"),
    ("a stop sequence -> the text cut before it, STOP",
     [MESSAGE], {}, {"stop": ["lo."]}, [{"text": "Hel"}], "STOP"),
    ("a refusal -> its text", [{**MESSAGE, "content": [{"type": "refusal", "refusal": "No."}]}],
     {}, {}, [{"text": "No."}], "STOP"),
]


@pytest.mark.parametrize("rule, items, extra, options, parts, finish", FINAL_RULES,
                         ids=[r[0] for r in FINAL_RULES])
def test_final_response_rule(rule, items, extra, options, parts, finish):
    out = response_from_final(_final(*items, **extra), MODEL, **options)
    [cand] = out["candidates"]
    assert [_signed(p) for p in cand["content"]["parts"]] == parts
    assert cand["content"]["role"] == "model" and cand["finishReason"] == finish
    assert out["usageMetadata"] == META and out["modelVersion"] == MODEL and out["responseId"]


def test_usage_metadata_rule():
    assert usage_metadata({"usage": USAGE}) == META
    plain = usage_metadata({"usage": {"input_tokens": 10, "output_tokens": 5}})
    assert plain == {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15,
                     "cachedContentTokenCount": 0}
    assert usage_metadata({}) is None


def ev(kind, **payload):
    return make_event({"type": kind, **payload})


def _events(*items, final_status="completed"):
    """The upstream's events for these output items, deltas included."""
    out = [ev("response.created", response={"id": "resp_1"})]
    for n, item in enumerate(items):
        out.append(ev("response.output_item.added", output_index=n, item={**item}))
        if item["type"] == "reasoning":
            for k, word in enumerate(("Pl", "an.")):
                out.append(ev("response.reasoning_summary_text.delta", item_id=item["id"],
                              output_index=n, summary_index=0, delta=word))
        if item["type"] == "message":
            for word in ("Hel", "lo."):
                out.append(ev("response.output_text.delta", item_id=item["id"],
                              output_index=n, delta=word))
        if item["type"] == "function_call":
            out.append(ev("response.function_call_arguments.delta", item_id=item["id"],
                          output_index=n, delta=item["arguments"]))
        out.append(ev("response.output_item.done", output_index=n, item=item))
    kind = "response.completed" if final_status == "completed" else "response.incomplete"
    out.append(ev(kind, response=_final(*items, status=final_status)))
    return out


def _stream(translator, events) -> bytes:
    out = b""
    for event in events:
        out += b"".join(translator.feed(event))
    return out + b"".join(translator.close())


def _sse_chunks(raw: bytes) -> list[dict]:
    frames = raw.split(b"\r\n\r\n")
    assert frames[-1] == b""
    assert all(f.startswith(b"data: ") for f in frames[:-1]), frames
    return [json.loads(f[6:]) for f in frames[:-1]]


def _parts(chunks) -> list[dict]:
    return [_signed(p) for c in chunks for p in c["candidates"][0]["content"]["parts"]]


# (rule, items, options, expected parts over the whole stream)
STREAM_RULES = [
    ("text deltas -> text parts", [MESSAGE], {}, [{"text": "Hel"}, {"text": "lo."}]),
    ("summary deltas -> thought parts; the signature on the next text part",
     [REASONING, MESSAGE], {"thoughts": True},
     [{"text": "Pl", "thought": True}, {"text": "an.", "thought": True},
      {"text": "Hel", "thoughtSignature": SIGNATURE}, {"text": "lo."}]),
    ("no thoughts asked -> no thought parts, the signature still travels",
     [REASONING, MESSAGE], {}, [{"text": "Hel", "thoughtSignature": SIGNATURE}, {"text": "lo."}]),
    ("a function call -> one whole functionCall part, signed",
     [REASONING, CALL], {}, [{**FUNCTION_CALL, "thoughtSignature": SIGNATURE}]),
    ("reasoning last -> the signature on an empty text part in the final chunk",
     [REASONING], {}, [{"text": "", "thoughtSignature": SIGNATURE}]),
    ("a stop sequence -> text up to it (a possible start held back), then the end",
     [MESSAGE], {"stop": ["lo"]}, [{"text": "He"}, {"text": "l"}]),
]


@pytest.mark.parametrize("rule, items, options, parts", STREAM_RULES,
                         ids=[r[0] for r in STREAM_RULES])
def test_stream_rule(rule, items, options, parts):
    t = GeminiStreamTranslator(MODEL, **options)
    chunks = _sse_chunks(_stream(t, _events(*items)))
    assert _parts(chunks) == parts
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert {c["responseId"] for c in chunks} == {t.response_id}
    assert all(c["modelVersion"] == MODEL for c in chunks)


def test_stream_usage_and_finish_reason_ride_on_the_last_chunk():
    t = GeminiStreamTranslator(MODEL)
    chunks = _sse_chunks(_stream(t, _events(MESSAGE, final_status="incomplete")))
    assert chunks[-1]["usageMetadata"] == META
    assert "usageMetadata" not in chunks[0]


def test_json_array_stream_is_one_json_array():
    t = GeminiStreamTranslator(MODEL, sse=False, thoughts=True)
    raw = _stream(t, _events(REASONING, MESSAGE))
    chunks = json.loads(raw)
    assert _parts(chunks)[-2:] == [{"text": "Hel", "thoughtSignature": SIGNATURE},
                                   {"text": "lo."}]
    # an empty answer and a failed one are still valid arrays
    assert json.loads(b"".join(GeminiStreamTranslator(MODEL, sse=False).close()))[0]["error"]
    failed = GeminiStreamTranslator(MODEL, sse=False)
    raw = _stream(failed, [ev("response.output_text.delta", item_id="m", delta="x"),
                           ev("error", error={"code": "rate_limit_exceeded", "message": "slow"})])
    assert json.loads(raw)[-1]["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_a_failure_after_the_first_byte_is_a_bare_error_line():
    t = GeminiStreamTranslator(MODEL)
    raw = _stream(t, [ev("response.output_text.delta", item_id="m", delta="x"),
                      ev("response.failed", response={"error": {
                          "code": "server_error", "message": "boom"}})])
    head, _, tail = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"data: ")
    assert json.loads(tail) == {"error": {
        "code": 502, "message": "boom", "status": "UNAVAILABLE", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVER_ERROR",
             "domain": "codex-gateway"}]}}
    # a stream that ends without a terminal event says so the same way
    truncated = GeminiStreamTranslator(MODEL).close()
    assert json.loads(b"".join(truncated))["error"]["status"] == "UNAVAILABLE"


def test_keepalive_is_a_blank_line_and_line_separators_are_escaped():
    t = GeminiStreamTranslator(MODEL)
    assert t.tick() == b"\n"  # an SSE comment would stall the Node SDK's parser
    raw = b"".join(t.feed(ev("response.output_text.delta", item_id="m", delta="a\u2028b\x85c")))
    assert "\u2028".encode() not in raw and "\x85".encode() not in raw
    assert json.loads(raw[6:])["candidates"][0]["content"]["parts"][0]["text"] == "a\u2028b\x85c"


@pytest.mark.parametrize("status, name", [
    (400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"),
    (404, "NOT_FOUND"), (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (502, "UNAVAILABLE"),
    (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED"), (418, "INVALID_ARGUMENT"),
])
def test_error_status_names(status, name):
    body = error_body(GatewayError(status, "m", code="x"))
    assert body["error"]["code"] == status and body["error"]["status"] == name


def test_rate_limit_error_carries_retry_info():
    body = error_body(GatewayError(429, "slow down", code="rate_limit_exceeded", retry_after=30))
    assert body["error"]["details"][-1] == {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                            "retryDelay": "30s"}
    assert body["error"]["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"


@pytest.mark.parametrize("code, status", [
    ("rate_limit_exceeded", "RESOURCE_EXHAUSTED"), ("usage_not_included", "PERMISSION_DENIED"),
    ("context_length_exceeded", "INVALID_ARGUMENT"), ("upstream_timeout", "DEADLINE_EXCEEDED"),
    ("server_is_overloaded", "UNAVAILABLE"), (None, "UNAVAILABLE"),
])
def test_in_stream_error_codes(code, status):
    assert json.loads(stream_error_frame({"code": code, "message": "m"}))["error"]["status"] \
        == status


def test_a_signature_handed_out_comes_back_as_the_reasoning_item():
    """The round trip: answer -> Gemini CLI's history -> the next request."""
    out = response_from_final(_final(REASONING, CALL), MODEL)
    parts = out["candidates"][0]["content"]["parts"]
    body = {"contents": [{"role": "user", "parts": [{"text": "weather?"}]},
                         {"role": "model", "parts": parts},
                         {"role": "user", "parts": [{"functionResponse": {
                             "id": "call_1", "name": "get_weather",
                             "response": {"output": "sunny"}}}]}]}
    items = translate_request(body, MODEL).responses["input"]
    assert items[1] == {"type": "reasoning", "id": "rs_1", "summary": [],
                        "encrypted_content": "gAAAA-enc"}
    assert items[2]["type"] == "function_call" and items[2]["call_id"] == "call_1"
    assert items[3] == {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}


_KINDS = ["response.output_text.delta", "response.reasoning_summary_text.delta",
          "response.output_item.done", "response.completed", "response.incomplete",
          "response.failed", "error", "response.refusal.delta", "response.created"]
_ITEMS = st.sampled_from([REASONING, MESSAGE, CALL, {"type": "reasoning"}, {"type": "x"}, {}])
_EVENT = st.builds(lambda kind, delta, item, usage: ev(kind, delta=delta, item=item,
                                                       item_id="m", summary_index=0,
                                                       response=_final(item, usage=usage)),
                   st.sampled_from(_KINDS), st.text(max_size=6) | st.integers(), _ITEMS,
                   st.sampled_from([USAGE, None, {"input_tokens": "x"}]))


@settings(max_examples=200, deadline=None)
@given(events=st.lists(_EVENT, max_size=12), sse=st.booleans(),
       stop=st.sampled_from([[], ["lo"]]), thoughts=st.booleans())
def test_any_event_sequence_gives_frames_a_google_sdk_can_read(events, sse, stop, thoughts):
    t = GeminiStreamTranslator(MODEL, sse=sse, stop=stop, thoughts=thoughts)
    raw = _stream(t, events)
    if not sse:
        chunks = json.loads(raw)  # one JSON array, whatever happened
    else:
        chunks = [json.loads(line[6:] if line.startswith(b"data: ") else line)
                  for line in raw.replace(b"\r\n", b"\n").split(b"\n") if line]
    assert chunks and ("error" in chunks[-1] or "finishReason" in chunks[-1]["candidates"][0])
