"""gateway.dialects.gemini.events
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Responses events -> Gemini ``GenerateContentResponse`` chunks, or one response.

A chunk is ``{"candidates": [{"content": {"role": "model", "parts": [...]},
"index": 0}], "modelVersion", "responseId"}``; the last one adds
``finishReason`` and ``usageMetadata``. ``:streamGenerateContent?alt=sse``
frames each chunk as ``data: <json>`` and a blank line; without ``alt=sse``
the chunks are the elements of one JSON array written as they come.

Parts: text deltas as ``text`` parts; reasoning summaries as ``thought: true``
parts when the request asked for thoughts (``includeThoughts``); a finished
reasoning item's id and encrypted content as the ``thoughtSignature`` of the
next part that is not a thought (a ``functionCall`` or text), or of an empty
text part at the end, where Gemini puts its own signatures and where clients
keep them (Gemini CLI drops thought parts from its history but echoes the
signature of a function call); function calls as whole ``functionCall``
parts with their ids.

Usage: ``promptTokenCount`` includes the cached part, which is also
``cachedContentTokenCount``; ``candidatesTokenCount`` excludes the reasoning,
which is ``thoughtsTokenCount`` (Google's accounting).

Framing rules that the Google SDKs impose: no SSE comments (the Node SDK's
parser stops at a line that is not ``data:``), so the keep-alive is a bare
newline; and no raw U+2028/U+2029/U+0085 inside a data line (both SDKs split
lines on them), so those are escaped.
"""
from __future__ import annotations

import os

from gateway.jsonio import dumps_text
from gateway.protocol import error_of

from ..output import PART_BREAK, items, message_text, reasoning_handlers, reasoning_text
from ..stops import first_stop, release
from ..tools import tool_input
from ..translator import Translator
from .errors import error_frame, stream_error_frame
from .signature import encode_thought_signature

KEEPALIVE = b"\n"
_LINE_BREAKS = ("\u2028", "\u2029", "\x85")


def new_response_id() -> str:
    return os.urandom(12).hex()


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def json_text(payload: dict) -> str:
    """Compact JSON that no line splitter can cut (see module doc)."""
    text = dumps_text(payload)
    for char in _LINE_BREAKS:
        if char in text:
            text = text.replace(char, "\\u%04x" % ord(char))
    return text


def usage_metadata(response: dict) -> dict | None:
    """Responses ``usage`` -> Gemini ``usageMetadata``."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    out_details = usage.get("output_tokens_details")
    thoughts = _int(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else 0
    prompt, output = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    meta = {"promptTokenCount": prompt, "candidatesTokenCount": max(output - thoughts, 0),
            "totalTokenCount": prompt + output, "cachedContentTokenCount": min(cached, prompt)}
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def finish_reason(response: dict, incomplete: bool = False) -> str:
    if incomplete or response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason in ("max_output_tokens", "max_tokens"):
            return "MAX_TOKENS"
        return "SAFETY" if reason == "content_filter" else "OTHER"
    return "STOP"


def call_part(item: dict, tool_names: dict) -> dict:
    name = item.get("name")
    name = tool_names.get(name, name) if isinstance(name, str) else ""
    call = {"name": name, "args": tool_input(item.get("arguments"))}
    call_id = item.get("call_id") or item.get("id")
    if isinstance(call_id, str) and call_id:
        call = {"id": call_id, **call}
    return {"functionCall": call}


def candidate(parts: list, finish: str | None = None) -> dict:
    out: dict = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        out["finishReason"] = finish
    return out


class GeminiStreamTranslator(Translator):
    """Feed parsed upstream events, get ready Gemini stream frames."""

    def __init__(self, model: str, *, thoughts: bool = False,
                 tool_names: dict[str, str] | None = None, stop: list[str] | None = None,
                 sse: bool = True, response_id: str | None = None) -> None:
        self.model = model
        self.thoughts = thoughts
        self.tool_names = tool_names or {}
        self.stop = [s for s in stop or () if s]
        self.sse = sse
        self.response_id = response_id or new_response_id()
        self.done = False
        self._signature: str | None = None  # waits for the next part that is not a thought
        self._texted: set = set()  # message items whose text was streamed
        self._thought: dict = {}  # reasoning item -> the summary part streamed last
        self._held = ""  # text held back while it may start a stop sequence
        self._opened = False  # JSON array: "[" written
        self._closed = False

    # --- frames ---

    def _frame(self, payload: dict) -> bytes:
        text = json_text(payload)
        if self.sse:
            return b"data: " + text.encode() + b"\r\n\r\n"
        head = b"," if self._opened else b"["
        self._opened = True
        return head + text.encode() + b"\r\n"

    def _chunk(self, parts: list, finish: str | None = None, usage: dict | None = None) -> bytes:
        payload: dict = {"candidates": [candidate(parts, finish)]}
        if usage is not None:
            payload["usageMetadata"] = usage
        payload["modelVersion"] = self.model
        payload["responseId"] = self.response_id
        return self._frame(payload)

    def _signed(self, part: dict) -> dict:
        if self._signature is not None:
            part["thoughtSignature"] = self._signature
            self._signature = None
        return part

    def _error(self, frame: bytes) -> list[bytes]:
        self.done = True
        if self.sse:
            return [frame]
        head = b"," if self._opened else b"["
        self._opened = True
        return [head + frame.strip() + b"\r\n"]

    def close(self) -> list[bytes]:
        out = []
        if not self.done:
            out = self._error(error_frame(
                502, "The upstream stream ended before the response completed.",
                "stream_truncated"))
        if not self.sse and not self._closed:
            self._closed = True
            out.append(b"]" if self._opened else b"[]")
        return out

    def tick(self) -> bytes:
        return KEEPALIVE  # a blank line: the only keep-alive both Google SDKs skip

    # --- text and stop sequences ---

    def _text(self, text: str) -> list[bytes]:
        if not self.stop:
            return [self._chunk([self._signed({"text": text})])]
        text, self._held, hit = release(self._held, text, self.stop)
        if hit is not None:
            self.done = True
            return [self._chunk([self._signed({"text": text})] if text else [], "STOP")]
        return [self._chunk([self._signed({"text": text})])] if text else []

    def _finish(self, response, incomplete: bool) -> list[bytes]:
        response = response if isinstance(response, dict) else {}
        parts = []
        if self._held:
            parts.append(self._signed({"text": self._held}))
            self._held = ""
        if self._signature is not None:
            parts.append(self._signed({"text": ""}))
        self.done = True
        return [self._chunk(parts, finish_reason(response, incomplete),
                            usage_metadata(response))]

    # --- handlers ---

    def _on_text(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        self._texted.add(data.get("item_id"))
        return self._text(delta)

    def _on_reasoning(self, data: dict, part_key: str) -> list[bytes]:
        delta = data.get("delta")
        if not self.thoughts or not isinstance(delta, str) or not delta:
            return []
        item, part = data.get("item_id"), data.get(part_key)
        if item in self._thought and self._thought[item] != part:
            delta = PART_BREAK + delta  # a new part: keep parts apart
        self._thought[item] = part
        return [self._chunk([{"text": delta, "thought": True}])]

    def _on_item_done(self, data: dict) -> list[bytes]:
        item = data.get("item")
        if not isinstance(item, dict):
            return []
        kind = item.get("type")
        out = []
        if kind == "reasoning":
            if self.thoughts and item.get("id") not in self._thought:
                text = reasoning_text(item)
                if text:
                    out.append(self._chunk([{"text": text, "thought": True}]))
            self._signature = encode_thought_signature(item) or self._signature
        elif kind == "message" and item.get("id") not in self._texted:
            text, _ = message_text(item)
            if text:
                out += self._text(text)
        elif kind == "function_call":
            out.append(self._chunk([self._signed(call_part(item, self.tool_names))]))
        return out

    def _on_completed(self, data: dict) -> list[bytes]:
        return self._finish(data.get("response"), False)

    def _on_incomplete(self, data: dict) -> list[bytes]:
        return self._finish(data.get("response"), True)

    def _on_failed(self, data: dict) -> list[bytes]:
        return self._error(stream_error_frame(error_of(data, "response.failed")))

    def _on_error(self, data: dict) -> list[bytes]:
        return self._error(stream_error_frame(error_of(data, "error")))


GeminiStreamTranslator.HANDLERS = {
    "response.output_text.delta": GeminiStreamTranslator._on_text,
    "response.refusal.delta": GeminiStreamTranslator._on_text,
    **reasoning_handlers(GeminiStreamTranslator._on_reasoning),
    "response.output_item.done": GeminiStreamTranslator._on_item_done,
    "response.completed": GeminiStreamTranslator._on_completed,
    "response.incomplete": GeminiStreamTranslator._on_incomplete,
    "response.failed": GeminiStreamTranslator._on_failed,
    "error": GeminiStreamTranslator._on_error,
}


def response_from_final(response: dict, model: str, *, thoughts: bool = False,
                        tool_names: dict[str, str] | None = None, stop: list[str] | None = None,
                        response_id: str | None = None) -> dict:
    """A final Responses object -> one ``GenerateContentResponse`` (non-streaming)."""
    response = response if isinstance(response, dict) else {}
    names = tool_names or {}
    stops = [s for s in stop or () if s]
    parts: list[dict] = []
    signature = None
    hit = None

    def signed(part: dict) -> dict:
        nonlocal signature
        if signature is not None:
            part["thoughtSignature"], signature = signature, None
        return part

    for item in items(response):
        kind = item.get("type")
        if kind == "reasoning":
            text = reasoning_text(item)
            if thoughts and text:
                parts.append({"text": text, "thought": True})
            signature = encode_thought_signature(item) or signature
        elif kind == "message":
            text, _ = message_text(item)
            cut, hit = first_stop(text, stops)
            text = text[:cut] if hit is not None else text
            if text:
                parts.append(signed({"text": text}))
            if hit is not None:
                break
        elif kind == "function_call":
            parts.append(signed(call_part(item, names)))
    if signature is not None:
        parts.append(signed({"text": ""}))
    out = {"candidates": [candidate(parts, "STOP" if hit is not None else
                                    finish_reason(response))]}
    usage = usage_metadata(response)
    if usage is not None:
        out["usageMetadata"] = usage
    out["modelVersion"] = model
    out["responseId"] = response_id or new_response_id()
    return out
