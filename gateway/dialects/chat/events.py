"""gateway.dialects.chat.events
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Responses API events -> Chat Completions chunks (stream) or one completion.

The translator sits on the per-event hot path, so chunks are rendered from a
prebuilt ``data: {id, object, created, model, choices:[{index, delta:`` prefix
and only the delta is JSON-encoded; each event's JSON is decoded once (by
:class:`gateway.sse.Event`). Malformed or unknown events are ignored rather
than raised: one odd frame must not kill a long answer. Failures and
truncation are surfaced as an in-stream ``{"error": …}`` frame with no
``[DONE]``, so clients never mistake a broken answer for a complete one.
"""
from __future__ import annotations

import json
import os
import time
from json.encoder import encode_basestring_ascii as _quote

from gateway import failures
from gateway.dialects.output import PART_BREAK, items, reasoning_handlers, reasoning_parts
from gateway.dialects.stops import first_stop, release
from gateway.dialects.translator import Translator
from gateway.protocol import error_of

DONE = b"data: [DONE]\n\n"
_TAIL = ',"finish_reason":null}]}\n\n'
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_TOOL_ITEMS = frozenset({"function_call", "custom_tool_call"})
_LENGTH_REASONS = frozenset({"max_output_tokens", "max_tokens"})


def new_completion_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_response(response: dict) -> dict | None:
    """Responses ``usage`` -> chat ``usage`` (cached and reasoning details kept)."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    total = usage.get("total_tokens")
    inp = usage.get("input_tokens_details")
    inp = inp if isinstance(inp, dict) else {}
    out = usage.get("output_tokens_details")
    out = out if isinstance(out, dict) else {}
    prompt_details = {"cached_tokens": _int(inp.get("cached_tokens"))}
    write = inp.get("cache_write_tokens", usage.get("cache_write_tokens"))
    if isinstance(write, int):
        prompt_details["cache_write_tokens"] = write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total if isinstance(total, int) else prompt + completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": _int(out.get("reasoning_tokens"))},
    }


def finish_reason(response: dict, has_tool_calls: bool, *, incomplete: bool = False) -> str:
    """``length``/``content_filter`` for incomplete answers, else ``tool_calls``/``stop``."""
    if incomplete or response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason in _LENGTH_REASONS:
            return "length"
        return "content_filter" if reason == "content_filter" else "stop"
    return "tool_calls" if has_tool_calls else "stop"


def upstream_error(payload: dict | None, default_code: str) -> dict:
    """An upstream ``error`` object -> the chat ``{"message","type","code"}`` shape,
    typed as the same failure is over HTTP before the first byte."""
    err = payload if isinstance(payload, dict) else {}
    code = err.get("code")
    code = code if isinstance(code, str) and code else default_code
    message = err.get("message")
    return {
        "message": message if isinstance(message, str) and message else f"upstream error ({code})",
        "type": failures.in_stream(code).type,
        "code": code,
    }


def _tool_call(item: dict, index: int, names: dict, arguments: str) -> dict:
    name = item.get("name")
    name = names.get(name, name) if isinstance(name, str) else ""
    call_id = item.get("call_id") or item.get("id") or f"call_{index}"
    return {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _item_arguments(item: dict):
    return item.get("arguments") if item.get("type") == "function_call" else item.get("input")


class ChatStreamTranslator(Translator):
    """Feed parsed upstream events, get ready ``chat.completion.chunk`` SSE frames."""

    __slots__ = (
        "completion_id", "created", "model", "include_usage", "tool_names", "stop", "done",
        "_meta", "_head", "_hold", "_ok", "_started", "_pending", "_tools", "_tool_count",
        "_r_item", "_r_part", "_r_seen",
    )

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool,
        tool_names: dict[str, str] | None = None,
        stop: list[str] | None = None,
        completion_id: str | None = None,
        created: int | None = None,
    ) -> None:
        self.completion_id = completion_id or new_completion_id()
        self.created = int(time.time()) if created is None else int(created)
        self.model = model
        self.include_usage = include_usage
        self.tool_names = tool_names or {}
        self.stop = [s for s in stop or () if s]
        self.done = False
        # Everything before "choices" value, shared by delta and usage chunks.
        self._meta = (
            f'{{"id":{_quote(self.completion_id)},"object":"chat.completion.chunk",'
            f'"created":{self.created},"model":{_quote(model)},"choices":'
        )
        self._head = f'data: {self._meta}[{{"index":0,"delta":'
        self._ok = False  # a terminal event or stop sequence ended the answer cleanly
        self._started = False
        self._pending = ""  # content held back while it may be the start of a stop sequence
        self._tools: dict = {}  # item id and output index -> [tool index, arguments sent]
        self._tool_count = 0
        self._r_item = self._r_part = None  # reasoning part being streamed
        self._r_seen = False

    # --- public ---------------------------------------------------------------

    def close(self) -> list[bytes]:
        """Final frames once upstream is exhausted: ``[DONE]`` or a truncation error."""
        if self._ok:
            self._ok = False
            return [DONE]
        if self.done:
            return []
        return self._fail(upstream_error(
            {"message": "upstream stream ended before the response completed"}, "stream_truncated"
        ))

    # --- frame helpers --------------------------------------------------------

    def _delta(self, delta: dict) -> bytes:
        return f"{self._head}{_dumps(delta)}{_TAIL}".encode()

    def _content(self, text: str) -> bytes:
        return f'{self._head}{{"content":{_quote(text)}}}{_TAIL}'.encode()

    def _prelude(self) -> list[bytes]:
        """Role chunk if not sent yet, then any held-back content, before other output."""
        out = []
        if not self._started:
            self._started = True
            out.append(f'{self._head}{{"role":"assistant","content":""}}{_TAIL}'.encode())
        if self._pending:
            out.append(self._content(self._pending))
            self._pending = ""
        return out

    def _finish(self, reason: str, usage: dict | None) -> list[bytes]:
        out = self._prelude()
        out.append(f'{self._head}{{}},"finish_reason":"{reason}"}}]}}\n\n'.encode())
        if self.include_usage and usage is not None:
            out.append(f'data: {self._meta}[],"usage":{_dumps(usage)}}}\n\n'.encode())
        self.done = self._ok = True
        return out

    def _fail(self, error: dict) -> list[bytes]:
        self.done = True
        return [f"data: {_dumps({'error': error})}\n\n".encode()]

    def _tool_state(self, data: dict):
        state = self._tools.get(data.get("item_id"))
        return state if state is not None else self._tools.get(data.get("output_index"))

    def _arguments(self, index: int, arguments: str) -> bytes:
        return (
            f'{self._head}{{"tool_calls":[{{"index":{index},"function":{{"arguments":'
            f"{_quote(arguments)}}}}}]}}{_TAIL}"
        ).encode()

    def _announce(self, item: dict, output_index, arguments: str | None) -> list[bytes]:
        index = self._tool_count
        frame = self._delta({"tool_calls": [_tool_call(item, index, self.tool_names, arguments or "")]})
        state = [index, arguments is not None]
        if item.get("id") is not None:
            self._tools[item["id"]] = state  # may raise on garbage ids: before any state changes
        if output_index is not None:
            self._tools[output_index] = state
        self._tool_count += 1
        out = self._prelude()
        out.append(frame)
        return out

    # --- event handlers -------------------------------------------------------

    def _on_created(self, data: dict) -> list[bytes]:
        return [] if self._started else self._prelude()

    def _on_text(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        out = self._prelude() if not self._started else []
        if not self.stop:
            out.append(self._content(delta))
            return out
        text, self._pending, hit = release(self._pending, delta, self.stop)
        if text:
            out.append(self._content(text))
        if hit is not None:  # usage is unknown yet: the finish chunk goes without it
            out += self._finish("stop", None)
        return out

    def _on_refusal(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        out = self._prelude()
        out.append(self._delta({"refusal": delta}))
        return out

    def _on_reasoning(self, data: dict, part_key: str) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        item, part = data.get("item_id"), data.get(part_key)
        if item != self._r_item or part != self._r_part:
            if self._r_seen:  # a new part: keep parts apart
                delta = PART_BREAK + delta
            self._r_item, self._r_part = item, part
        self._r_seen = True
        out = self._prelude()
        out.append(f'{self._head}{{"reasoning_content":{_quote(delta)}}}{_TAIL}'.encode())
        return out

    def _on_item_added(self, data: dict) -> list[bytes]:
        item = data.get("item")
        if not isinstance(item, dict) or item.get("type") not in _TOOL_ITEMS:
            return []
        return self._announce(item, data.get("output_index"), None)

    def _on_args_delta(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        state = self._tool_state(data)
        if state is None or not isinstance(delta, str) or not delta:
            return []
        state[1] = True
        out = self._prelude() if (self._pending or not self._started) else []
        out.append(self._arguments(state[0], delta))
        return out

    def _on_args_done(self, data: dict) -> list[bytes]:
        state = self._tool_state(data)
        args = data.get("arguments", data.get("input"))
        if state is None or state[1] or not isinstance(args, str) or not args:
            return []
        state[1] = True
        out = self._prelude()
        out.append(self._arguments(state[0], args))
        return out

    def _on_item_done(self, data: dict) -> list[bytes]:
        item = data.get("item")
        if not isinstance(item, dict) or item.get("type") not in _TOOL_ITEMS:
            return []
        args = _item_arguments(item)
        args = args if isinstance(args, str) else ""
        state = self._tools.get(item.get("id"))
        if state is None:
            state = self._tools.get(data.get("output_index"))
        if state is None:  # never announced: send the whole call at once
            return self._announce(item, data.get("output_index"), args)
        if state[1] or not args:
            return []
        state[1] = True
        out = self._prelude()
        out.append(self._arguments(state[0], args))
        return out

    def _on_completed(self, data: dict) -> list[bytes]:
        response = data.get("response")
        response = response if isinstance(response, dict) else {}
        return self._finish("tool_calls" if self._tool_count else "stop", usage_from_response(response))

    def _on_incomplete(self, data: dict) -> list[bytes]:
        response = data.get("response")
        response = response if isinstance(response, dict) else {}
        reason = finish_reason(response, bool(self._tool_count), incomplete=True)
        return self._finish(reason, usage_from_response(response))

    def _on_failed(self, data: dict) -> list[bytes]:
        return self._fail(upstream_error(error_of(data, "response.failed"), "response_failed"))

    def _on_error(self, data: dict) -> list[bytes]:
        return self._fail(upstream_error(error_of(data, "error"), "upstream_error"))


ChatStreamTranslator.HANDLERS = {
    "response.created": ChatStreamTranslator._on_created,
    "response.output_text.delta": ChatStreamTranslator._on_text,
    "response.refusal.delta": ChatStreamTranslator._on_refusal,
    **reasoning_handlers(ChatStreamTranslator._on_reasoning),
    "response.output_item.added": ChatStreamTranslator._on_item_added,
    "response.function_call_arguments.delta": ChatStreamTranslator._on_args_delta,
    "response.custom_tool_call_input.delta": ChatStreamTranslator._on_args_delta,
    "response.function_call_arguments.done": ChatStreamTranslator._on_args_done,
    "response.custom_tool_call_input.done": ChatStreamTranslator._on_args_done,
    "response.output_item.done": ChatStreamTranslator._on_item_done,
    "response.completed": ChatStreamTranslator._on_completed,
    "response.incomplete": ChatStreamTranslator._on_incomplete,
    "response.failed": ChatStreamTranslator._on_failed,
    "error": ChatStreamTranslator._on_error,
}


def completion_from_response(
    response: dict,
    model: str,
    *,
    tool_names: dict[str, str] | None = None,
    stop: list[str] | None = None,
    completion_id: str | None = None,
    created: int | None = None,
) -> dict:
    """A final Responses object -> one non-stream ``chat.completion``."""
    response = response if isinstance(response, dict) else {}
    names = tool_names or {}
    texts: list[str] = []
    reasoning: list[str] = []
    refusals: list[str] = []
    calls: list[tuple[int, dict]] = []  # (content length when the call came, call)
    length = 0
    for item in items(response):
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                    length += len(part["text"])
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
        elif kind == "reasoning":
            reasoning.extend(reasoning_parts(item))
        elif kind in _TOOL_ITEMS:
            args = _item_arguments(item)
            call = _tool_call(item, len(calls), names, args if isinstance(args, str) else "")
            del call["index"]
            calls.append((length, call))
    content = "".join(texts)
    reason = None
    cut, _ = first_stop(content, [s for s in stop or () if s])
    if cut >= 0:  # the answer would have ended at the first stop sequence
        content, reason = content[:cut], "stop"
        calls = [c for c in calls if c[0] <= cut]
    if reason is None:
        reason = finish_reason(response, bool(calls))
    message: dict = {"role": "assistant", "content": content or None}
    if reasoning:
        message["reasoning_content"] = PART_BREAK.join(reasoning)
    if refusals:
        message["refusal"] = "".join(refusals)
    if calls:
        message["tool_calls"] = [c for _, c in calls]
    result = {
        "id": completion_id or new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else int(created),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
    }
    usage = usage_from_response(response)
    if usage is not None:
        result["usage"] = usage
    return result
