"""gateway.dialects.messages.events
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Responses events -> Anthropic Messages SSE frames, or one ``message`` object.

Claude Code validates the stream: a delta for a block index that was never
started makes it drop the stream and resend with ``stream: false``. So
blocks are opened and closed strictly one at a time with increasing
indexes, and a late event for a block that is already closed is ignored
rather than rendered. Reasoning items become ``thinking`` blocks whose
``signature`` carries the item (see :mod:`.signature`), so Claude Code
echoes it and the model keeps its reasoning on the next turn.

Usage: Anthropic reports ``input_tokens`` *without* the cached part, so
``input_tokens`` = upstream input − cached, ``cache_read_input_tokens`` =
cached, ``output_tokens_details.thinking_tokens`` = the upstream's
reasoning tokens. The upstream only reports usage at the end, so ``message_start``
carries the caller's estimate (or 0) and ``message_delta`` the real numbers
(the Anthropic SDKs and Claude Code take the later values).

Stop sequences are emulated like chat's ``stop``: text that could be the
start of one is held back until it is known not to be; on a match the
answer ends with ``stop_reason: "stop_sequence"`` and the caller stops
reading the upstream.

Malformed or unknown events are ignored: one odd frame must not kill a long
answer. Failures and truncation become an ``event: error`` frame.
"""
from __future__ import annotations

import os
from json.encoder import encode_basestring_ascii as _quote

from gateway.jsonio import dumps_text
from gateway.protocol import error_of

from ..output import PART_BREAK, items, message_text, reasoning_handlers, reasoning_text
from ..stops import first_stop, release
from ..tools import tool_input
from ..translator import Translator
from .errors import frame_for
from .errors import stream_error_type
from .signature import encode_signature

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_TOOL_ITEMS = frozenset({"function_call"})
_LENGTH_REASONS = frozenset({"max_output_tokens", "max_tokens"})


def new_message_id() -> str:
    return "msg_" + os.urandom(12).hex()


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def frame(event: str, payload: dict) -> bytes:
    """One Anthropic SSE frame: ``event: X`` and the JSON payload."""
    return f"event: {event}\ndata: {dumps_text(payload)}\n\n".encode()


def usage_from_response(response: dict, searches: int = 0) -> dict | None:
    """Responses ``usage`` -> Anthropic ``usage`` (the cached part split out)."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    total = _int(usage.get("input_tokens"))
    cached = min(cached, total)
    out = {
        "input_tokens": total - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": _int(usage.get("output_tokens")),
    }
    out_details = usage.get("output_tokens_details")
    reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, dict) else None
    if isinstance(reasoning, int) and not isinstance(reasoning, bool):
        # the ``thinking-token-count`` beta's field: reasoning is part of output_tokens
        out["output_tokens_details"] = {"thinking_tokens": reasoning}
    if searches:
        out["server_tool_use"] = {"web_search_requests": searches}
    return out


def stop_reason(response: dict, used_tool: bool, refused: bool, *, incomplete: bool = False) -> str:
    """``max_tokens``/``refusal`` for incomplete answers, else ``tool_use``/``refusal``/``end_turn``."""
    if incomplete or response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason in _LENGTH_REASONS:
            return "max_tokens"
        if reason == "content_filter":
            return "refusal"
    if used_tool:
        return "tool_use"
    return "refusal" if refused else "end_turn"


def _search_blocks(item: dict) -> tuple[dict, dict]:
    """A ``web_search_call`` item -> ``server_tool_use`` + ``web_search_tool_result``."""
    tool_id = "srvtoolu_" + str(item.get("id") or "search")
    action = item.get("action") if isinstance(item.get("action"), dict) else {}
    query = action.get("query") if isinstance(action.get("query"), str) else ""
    results = []
    for source in action.get("sources") or ():
        if isinstance(source, dict) and isinstance(source.get("url"), str):
            results.append({"type": "web_search_result", "url": source["url"],
                            "title": source.get("title") if isinstance(source.get("title"), str) else "",
                            "encrypted_content": "", "page_age": None})
    use = {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}}
    result = {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results}
    return use, result


class _Block:
    """One content block of the answer: its index and what was sent into it."""

    __slots__ = ("index", "kind", "sent", "part", "closed")

    def __init__(self, index: int, kind: str) -> None:
        self.index = index
        self.kind = kind
        self.sent = False  # any delta sent (text, thinking, arguments)
        self.part = None  # reasoning: the summary part being streamed
        self.closed = False


class MessagesStreamTranslator(Translator):
    """Feed parsed upstream events, get ready Anthropic SSE frames."""

    def __init__(
        self,
        model: str,
        *,
        thinking: bool = True,
        tool_names: dict[str, str] | None = None,
        stop: list[str] | None = None,
        message_id: str | None = None,
        input_tokens: int = 0,
    ) -> None:
        self.model = model
        self.thinking = thinking
        self.tool_names = tool_names or {}
        self.stop = [s for s in stop or () if s]
        self.message_id = message_id or new_message_id()
        self.input_tokens = input_tokens
        self.done = False
        self.stop_sequence: str | None = None  # the stop sequence that ended the answer
        self._started = False
        self._blocks: dict = {}  # item id and output index -> _Block
        self._current: _Block | None = None
        self._next = 0
        self._pending = ""  # text held back while it may start a stop sequence
        self._used_tool = False
        self._refused = False
        self._searches = 0

    # --- public ---------------------------------------------------------------

    def close(self) -> list[bytes]:
        """Final frames once the upstream is exhausted: nothing, or a truncation error."""
        if self.done:
            return []
        self.done = True
        return [frame_for("api_error", "The upstream stream ended before the response completed.")]

    def ping(self) -> bytes:
        """A keep-alive while the upstream is silent (``message_start`` first if not sent)."""
        if self.done:
            return b""
        return b"".join(self._start()) + PING

    tick = ping  # Anthropic's keep-alive is a ping event

    # --- frames ---------------------------------------------------------------

    def _usage(self, usage: dict | None) -> dict:
        if usage is not None:
            return usage
        return {"input_tokens": self.input_tokens, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": 0}

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [frame("message_start", {"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": self._usage(None),
        }})]

    def _open(self, keys: tuple, kind: str, block: dict) -> tuple[list[bytes], _Block]:
        out = self._start()
        out += self._close_current()
        state = _Block(self._next, kind)
        self._next += 1
        for key in keys:
            if key is not None:
                self._blocks[key] = state
        self._current = state
        out.append(frame("content_block_start", {
            "type": "content_block_start", "index": state.index, "content_block": block}))
        return out, state

    def _close_current(self) -> list[bytes]:
        state = self._current
        if state is None:
            return []
        out = []
        if self._pending:
            out.append(self._text_frame(state, self._pending))
            self._pending = ""
        state.closed = True
        self._current = None
        out.append(f'event: content_block_stop\ndata: {{"type":"content_block_stop","index":'
                   f'{state.index}}}\n\n'.encode())
        return out

    def _delta(self, state: _Block, delta: dict) -> bytes:
        return frame("content_block_delta", {
            "type": "content_block_delta", "index": state.index, "delta": delta})

    def _text_frame(self, state: _Block, text: str) -> bytes:
        return (f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":'
                f'{state.index},"delta":{{"type":"text_delta","text":{_quote(text)}}}}}\n\n').encode()

    def _finish(self, reason: str, usage: dict | None, sequence: str | None = None) -> list[bytes]:
        out = self._start()
        out += self._close_current()
        out.append(frame("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": self._usage(usage)}))
        out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        self.done = True
        self.stop_sequence = sequence
        return out

    def _fail(self, error) -> list[bytes]:
        err = error if isinstance(error, dict) else {}
        code = err.get("code")
        message = err.get("message")
        message = message if isinstance(message, str) and message else \
            f"upstream error ({code or 'unknown'})"
        self.done = True
        return [frame_for(stream_error_type(code, message), message)]

    def _state(self, data: dict) -> _Block | None:
        state = self._blocks.get(data.get("item_id"))
        return state if state is not None else self._blocks.get(data.get("output_index"))

    # --- text -----------------------------------------------------------------

    def _text(self, state: _Block, text: str) -> list[bytes]:
        """Text into the open block, holding back what may start a stop sequence."""
        if not self.stop:
            state.sent = True
            return [self._text_frame(state, text)]
        text, self._pending, hit = release(self._pending, text, self.stop)
        out = []
        if hit is not None:
            if text:
                out.append(self._text_frame(state, text))
            return out + self._finish("stop_sequence", None, hit)
        if text:
            state.sent = True
            out.append(self._text_frame(state, text))
        return out

    def _text_block(self, data: dict) -> tuple[list[bytes], _Block | None]:
        state = self._state(data)
        if state is None:
            out, state = self._open((data.get("item_id"), data.get("output_index")), "text",
                                    {"type": "text", "text": ""})
            return out, state
        return [], (None if state.closed or state.kind != "text" else state)

    # --- event handlers -------------------------------------------------------

    def _on_created(self, data: dict) -> list[bytes]:
        return self._start()

    def _on_text(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        out, state = self._text_block(data)
        if state is None:
            return out
        return out + self._text(state, delta)

    def _on_refusal(self, data: dict) -> list[bytes]:
        out = self._on_text(data)
        if out:
            self._refused = True
        return out

    def _on_reasoning(self, data: dict, part_key: str) -> list[bytes]:
        delta = data.get("delta")
        if not self.thinking or not isinstance(delta, str) or not delta:
            return []
        out: list[bytes] = []
        state = self._state(data)
        if state is None:
            out, state = self._open((data.get("item_id"), data.get("output_index")), "thinking",
                                    {"type": "thinking", "thinking": "", "signature": ""})
        if state.closed or state.kind != "thinking":
            return out
        part = data.get(part_key)
        if state.sent and part != state.part:
            delta = PART_BREAK + delta  # a new part: keep parts apart
        state.part, state.sent = part, True
        out.append(self._delta(state, {"type": "thinking_delta", "thinking": delta}))
        return out

    def _on_item_added(self, data: dict) -> list[bytes]:
        item = data.get("item")
        if not isinstance(item, dict):
            return []
        kind = item.get("type")
        keys = (item.get("id"), data.get("output_index"))
        if kind == "reasoning" and self.thinking:
            return self._open(keys, "thinking", {"type": "thinking", "thinking": "", "signature": ""})[0]
        if kind in _TOOL_ITEMS:
            return self._open_tool(item, keys)[0]
        return []

    def _open_tool(self, item: dict, keys: tuple) -> tuple[list[bytes], _Block]:
        name = item.get("name")
        name = self.tool_names.get(name, name) if isinstance(name, str) else ""
        call_id = item.get("call_id") or item.get("id") or f"toolu_{self._next}"
        self._used_tool = True
        return self._open(keys, "tool_use",
                          {"type": "tool_use", "id": call_id, "name": name, "input": {}})

    def _on_args_delta(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        state = self._state(data)
        if state is None or state.closed or state.kind != "tool_use" \
                or not isinstance(delta, str) or not delta:
            return []
        state.sent = True
        return [self._delta(state, {"type": "input_json_delta", "partial_json": delta})]

    def _on_args_done(self, data: dict) -> list[bytes]:
        state = self._state(data)
        args = data.get("arguments")
        if state is None or state.closed or state.sent or not isinstance(args, str) or not args:
            return []
        state.sent = True
        return [self._delta(state, {"type": "input_json_delta", "partial_json": args})]

    def _on_item_done(self, data: dict) -> list[bytes]:
        item = data.get("item")
        if not isinstance(item, dict):
            return []
        kind = item.get("type")
        state = self._blocks.get(item.get("id"))
        if state is None:
            state = self._blocks.get(data.get("output_index"))
        keys = (item.get("id"), data.get("output_index"))
        out: list[bytes] = []
        if kind == "reasoning":
            if not self.thinking:
                return []
            if state is None:
                out, state = self._open(keys, "thinking",
                                        {"type": "thinking", "thinking": "", "signature": ""})
            if state.closed:
                return out
            if not state.sent:
                text = reasoning_text(item)
                if text:
                    out.append(self._delta(state, {"type": "thinking_delta", "thinking": text}))
            out.append(self._delta(state, {"type": "signature_delta",
                                           "signature": encode_signature(item)}))
            return out + self._close_current()
        if kind == "message":
            if state is None:
                text, refused = message_text(item)
                if not text:
                    return []
                out, state = self._open(keys, "text", {"type": "text", "text": ""})
                self._refused = self._refused or refused
                out += self._text(state, text)
                if self.done:
                    return out
            return out + (self._close_current() if state is self._current else [])
        if kind in _TOOL_ITEMS:
            if state is None:
                out, state = self._open_tool(item, keys)
            if state.closed:
                return out
            args = item.get("arguments")
            if not state.sent and isinstance(args, str) and args:
                state.sent = True
                out.append(self._delta(state, {"type": "input_json_delta", "partial_json": args}))
            return out + self._close_current()
        if kind == "web_search_call":
            use, result = _search_blocks(item)
            query = use["input"]
            use = {**use, "input": {}}
            opened, state = self._open((), "server_tool_use", use)
            out += opened
            out.append(self._delta(state, {"type": "input_json_delta",
                                           "partial_json": dumps_text(query)}))
            out += self._open((), "web_search_tool_result", result)[0]
            out += self._close_current()
            self._searches += 1
            return out
        return []

    def _on_completed(self, data: dict) -> list[bytes]:
        response = data.get("response")
        response = response if isinstance(response, dict) else {}
        reason = stop_reason(response, self._used_tool, self._refused)
        return self._finish(reason, usage_from_response(response, self._searches))

    def _on_incomplete(self, data: dict) -> list[bytes]:
        response = data.get("response")
        response = response if isinstance(response, dict) else {}
        reason = stop_reason(response, self._used_tool, self._refused, incomplete=True)
        return self._finish(reason, usage_from_response(response, self._searches))

    def _on_failed(self, data: dict) -> list[bytes]:
        return self._fail(error_of(data, "response.failed"))

    def _on_error(self, data: dict) -> list[bytes]:
        return self._fail(error_of(data, "error"))


MessagesStreamTranslator.HANDLERS = {
    "response.created": MessagesStreamTranslator._on_created,
    "response.output_text.delta": MessagesStreamTranslator._on_text,
    "response.refusal.delta": MessagesStreamTranslator._on_refusal,
    **reasoning_handlers(MessagesStreamTranslator._on_reasoning),
    "response.output_item.added": MessagesStreamTranslator._on_item_added,
    "response.function_call_arguments.delta": MessagesStreamTranslator._on_args_delta,
    "response.function_call_arguments.done": MessagesStreamTranslator._on_args_done,
    "response.output_item.done": MessagesStreamTranslator._on_item_done,
    "response.completed": MessagesStreamTranslator._on_completed,
    "response.incomplete": MessagesStreamTranslator._on_incomplete,
    "response.failed": MessagesStreamTranslator._on_failed,
    "error": MessagesStreamTranslator._on_error,
}


def message_from_response(
    response: dict,
    model: str,
    *,
    thinking: bool = True,
    tool_names: dict[str, str] | None = None,
    stop: list[str] | None = None,
    message_id: str | None = None,
) -> dict:
    """A final Responses object -> one non-streaming Anthropic ``message``."""
    response = response if isinstance(response, dict) else {}
    names = tool_names or {}
    stops = [s for s in stop or () if s]
    content: list[dict] = []
    used_tool = refused = False
    searches = 0
    hit = None
    for item in items(response):
        kind = item.get("type")
        if kind == "reasoning":
            if thinking:
                content.append({"type": "thinking", "thinking": reasoning_text(item),
                                "signature": encode_signature(item)})
        elif kind == "message":
            text, was_refusal = message_text(item)
            refused = refused or was_refusal
            cut, hit = first_stop(text, stops)
            if hit is not None:  # the answer would have ended at the first stop sequence
                text = text[:cut]
            if text:
                content.append({"type": "text", "text": text})
            if hit is not None:
                break
        elif kind in _TOOL_ITEMS:
            name = item.get("name")
            content.append({
                "type": "tool_use",
                "id": item.get("call_id") or item.get("id") or f"toolu_{len(content)}",
                "name": names.get(name, name) if isinstance(name, str) else "",
                "input": tool_input(item.get("arguments")),
            })
            used_tool = True
        elif kind == "web_search_call":
            content.extend(_search_blocks(item))
            searches += 1
    if hit is not None:
        reason = "stop_sequence"
    else:
        reason = stop_reason(response, used_tool, refused)
    usage = usage_from_response(response, searches) or {
        "input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
        "output_tokens": 0}
    return {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": hit,
        "usage": usage,
    }
