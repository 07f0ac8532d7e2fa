"""tests.fakes.codex_answers
~~~~~~~~~~~~~~~~~~~~~~~~~~
The pure logic behind the fake upstream: the prompt-cache arithmetic, what an
answer says, and the Responses SSE event sequence (normal and faulty).

Prompt caching is modelled deterministically so tests can assert on
``cached_tokens``: the prompt is the canonical string ``S =
json.dumps(instructions) + json.dumps(tools) +
"".join(render_item(item) for item in input)`` and counts ``ceil(len(S) / 4)``
input tokens; a request is credited the character prefix it shares with the
previous ``S`` stored under its cache key (in tokens, floored) when that is at
least 1024 tokens, rounded down to a multiple of 128 and kept below its input
tokens.

An item is rendered as the model sees it (:func:`render_item`), not as JSON:
like the real backend, which tokenizes roles, text, tool calls and their
outputs, never field names, item ids, ``status`` or ``annotations``. So a
client that sends an answer back in its own shape (a Chat or Messages client's
assistant message) costs the same tokens, and hits the same cache, as the
backend's own stored item: what the model sees is the same. Tool definitions
are read in the order their keys come (a schema's properties are listed as
sent), so a client that re-orders them each turn breaks its prefix there, as
it does upstream.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass

DEFAULT_REPLY = "Hello from the fake upstream."
MIN_CACHED_TOKENS = 1024
CACHE_STEP = 128
REASONING_TOKENS = 64
REASONING_SUMMARY = "**Considering the request**\n\nWorking out a short answer."
IMAGE_TOKENS = 1056
MODERATION_MESSAGE = "Your request was rejected by the safety system."


# -- prompt-cache model -------------------------------------------------------

def prompt_text(body: dict) -> str:
    """The canonical prefix string S that cache hits are measured on."""
    return (json.dumps(body.get("instructions"))
            + json.dumps(body.get("tools"))
            + "".join(render_item(item) for item in body["input"]))


# Fields the model never sees: identities and bookkeeping of an item or a part.
_UNSEEN = frozenset({"id", "status", "annotations", "logprobs", "call_id"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "refusal"})


def _seen(value) -> str:
    """Anything without a rendering of its own: its JSON, unseen fields left out."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in _UNSEEN}
    return json.dumps(value, sort_keys=True)


def _parts_text(content) -> str:
    """A message's content as the model reads it: the text of text parts (whatever
    their type is called), any other part (an image, a file) as itself."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return _seen(content)
    out = []
    for part in content:
        if isinstance(part, dict) and part.get("type") in _TEXT_PARTS \
                and isinstance(part.get("text", part.get("refusal")), str):
            out.append(part.get("text", part.get("refusal")))
        else:
            out.append(_seen(part))
    return "".join(out)


def render_item(item) -> str:
    """One input item as the model sees it: role or kind, then its text, a call's
    name and arguments, a tool's output. Ids, ``status``, ``annotations`` and
    the JSON around them are not part of it."""
    if not isinstance(item, dict):
        return _seen(item)
    kind = item.get("type")
    if kind == "message" or (kind is None and "role" in item):
        return f"<|{item.get('role')}|>{_parts_text(item.get('content'))}<|end|>"
    if kind in ("function_call", "custom_tool_call"):
        args = item.get("arguments", item.get("input"))
        return f"<|call|>{item.get('name')}({args if isinstance(args, str) else _seen(args)})<|end|>"
    if kind in ("function_call_output", "custom_tool_call_output"):
        out = item.get("output")
        return f"<|output|>{out if isinstance(out, str) else _parts_text(out)}<|end|>"
    if kind in ("reasoning", "compaction"):
        return f"<|{kind}|>{item.get('encrypted_content') or item.get('id')}<|end|>"
    return f"<|{kind}|>{_seen(item)}<|end|>"


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def cached_tokens(previous: str | None, current: str, input_tokens: int) -> int:
    """Tokens of *current* served from cache after *previous* under the same key."""
    if not previous:
        return 0
    common = min(len(os.path.commonprefix([previous, current])) // 4, input_tokens - 1)
    return common // CACHE_STEP * CACHE_STEP if common >= MIN_CACHED_TOKENS else 0


# -- what the answer says -----------------------------------------------------

_SAY = re.compile(r"\[\[say:(.*?)\]\]", re.S)
_CALL = re.compile(r"\[\[call:([\w.\-]+)\s*")
_EXAMPLES = {"string": "ok", "number": 1, "integer": 1, "boolean": True, "array": [], "object": {}}


@dataclass
class Answer:
    """A text message, a function call (name, JSON arguments), or a compaction."""

    text: str = ""
    call: tuple[str, str] | None = None
    compaction: bool = False
    image: dict | None = None      # the image_generation tool's options
    refused: bool = False          # a moderation refusal (response.failed)


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)
                       and isinstance(p.get("text"), str))
    return ""


def _last_user_text(items: list) -> str:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return _content_text(item.get("content"))
    return ""


def _parse_call(text: str) -> tuple[str, str] | None:
    """``[[call:NAME {json}]]`` → (NAME, arguments); the JSON may contain ``]]``."""
    match = _CALL.search(text)
    if not match:
        return None
    rest = text[match.end():]
    if rest.startswith("]]"):
        return match.group(1), "{}"
    try:
        args, _ = json.JSONDecoder().raw_decode(rest)
    except ValueError:
        return None
    return match.group(1), json.dumps(args)


def _schema_example(schema: dict) -> str:
    """A JSON object with simple values for the schema's required properties."""
    props = schema.get("properties") or {}
    value = {}
    for name in schema.get("required") or []:
        prop = props.get(name) or {}
        kind = prop.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        value[name] = prop["enum"][0] if prop.get("enum") else _EXAMPLES.get(kind, "ok")
    return json.dumps(value)


def plan_answer(body: dict, reply: str | None, schema_reply: str | None = None) -> Answer:
    """Decide the answer; the first rule that applies wins.

    0. last input item is ``{"type": "compaction_trigger"}`` (Codex's remote
       compaction v2) → exactly one ``compaction`` output item, as the backend does;
    1. ``text.format.type == "json_schema"`` and a configured ``schema_reply`` → it
       (a client's structured side call, such as Gemini CLI's router, answered
       the same whatever its prompt says);
    2. last input item is a ``function_call_output`` → "Tool result was: <output>"
       (checked first so a ``[[call:…]]`` turn does not loop forever);
    3. ``[[call:NAME ARGS]]`` in the last user message → function call;
    4. ``[[say:TEXT]]`` in the last user message → TEXT;
    5. ``text.format.type == "json_schema"`` → JSON satisfying ``required``;
    6. the configured reply, else ``DEFAULT_REPLY``.
    """
    items = body["input"]
    last = items[-1] if items else None
    if isinstance(last, dict) and last.get("type") == "compaction_trigger":
        return Answer(compaction=True)
    image_tool = next((t for t in body.get("tools") or () if isinstance(t, dict)
                       and t.get("type") == "image_generation"), None)
    if image_tool is not None and (body.get("tool_choice") == {"type": "image_generation"}
                                   or "[[image]]" in _last_user_text(items)):
        return Answer(image=image_tool, refused="[[moderation]]" in _last_user_text(items))
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if schema_reply is not None and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return Answer(schema_reply)
    if isinstance(last, dict) and last.get("type") == "function_call_output":
        output = last.get("output")
        if not isinstance(output, str):
            output = _content_text(output) or json.dumps(output)
        return Answer(f"Tool result was: {output}")
    user_text = _last_user_text(items)
    call = _parse_call(user_text)
    if call:
        return Answer(call=call)
    say = _SAY.search(user_text)
    if say:
        return Answer(say.group(1))
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return Answer(_schema_example(fmt.get("schema") or {}))
    return Answer(reply if reply is not None else DEFAULT_REPLY)


# -- the model catalog (GET /models) ---------------------------------------------

_CLIENT_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
GATED_MESSAGE = ("The '{model}' model requires a newer version of Codex. Please upgrade to "
                 "the latest app or CLI and try again.")


def version_tuple(text) -> tuple[int, int, int] | None:
    match = _CLIENT_VERSION.search(text) if isinstance(text, str) else None
    return tuple(int(p) for p in match.groups()) if match else None  # type: ignore[return-value]


def request_client_version(headers) -> tuple[int, int, int] | None:
    """The client version a request claims: its ``version`` header, else the one in
    its ``User-Agent`` (``originator/0.171.0 (...)``)."""
    return version_tuple(headers.get("version")) or version_tuple(
        (headers.get("User-Agent") or "").split(" ", 1)[0])


def model_info(spec: dict, priority: int) -> dict:
    """One entry of the backend's catalog, complete enough for Codex CLI to read."""
    slug = spec["slug"]
    entry = {
        "slug": slug, "display_name": spec.get("display_name", slug), "description": slug,
        "supported_reasoning_levels": [{"effort": e, "description": e}
                                       for e in ("low", "medium", "high")],
        "default_reasoning_level": "medium", "shell_type": "shell_command",
        "visibility": "list", "supported_in_api": True, "priority": priority,
        "additional_speed_tiers": [], "availability_nux": None, "upgrade": None,
        "base_instructions": spec.get("base_instructions",
                                      f"You are {slug}, a coding agent (fake backend)."),
        "supports_reasoning_summaries": True, "default_reasoning_summary": "auto",
        "support_verbosity": False, "default_verbosity": None, "apply_patch_tool_type": None,
        "web_search_tool_type": "text", "truncation_policy": {"mode": "bytes", "limit": 10000},
        "supports_parallel_tool_calls": True, "supports_image_detail_original": False,
        "context_window": spec.get("context_window", 272000),
        "effective_context_window_percent": 95, "experimental_supported_tools": [],
        "input_modalities": ["text", "image"], "supports_search_tool": False,
    }
    entry["model_messages"] = {"instructions_template": entry["base_instructions"],
                               "instructions_variables": None}
    if spec.get("minimal_client_version"):
        entry["minimal_client_version"] = spec["minimal_client_version"]
    return entry


def offered(entries: list[dict], version: tuple[int, int, int] | None) -> list[dict]:
    """The entries a client of *version* is offered (gated ones need at least theirs)."""
    return [e for e in entries if not e.get("minimal_client_version")
            or (version is not None and version >= version_tuple(e["minimal_client_version"]))]


def catalog_etag(entries: list[dict]) -> str:
    digest = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:16]}"'


# -- SSE events ---------------------------------------------------------------

def _split(text: str, parts: int) -> list[str]:
    """*text* in at most *parts* non-empty pieces (one piece if empty)."""
    size = max(1, math.ceil(len(text) / max(parts, 1)))
    return [text[i:i + size] for i in range(0, len(text), size)] or [text]


def encrypted_by(n: int, owner: str | None) -> str:
    """A reasoning item's encrypted_content: like the backend's, only the account
    that made it can read it, so the fake's names that account."""
    return f"gAAAAfake-encrypted-{n:04d}" + (f"-by-{owner}" if owner else "")


def unreadable_reasoning(body: dict, account: str) -> str | None:
    """The id (or content) of the first input reasoning item encrypted by
    another account than *account*; None when every one is readable."""
    for item in body.get("input") or ():
        if not isinstance(item, dict) or item.get("type") != "reasoning":
            continue
        owner = str(item.get("encrypted_content") or "").partition("-by-")[2]
        if owner and owner != account:
            return item.get("id") or item["encrypted_content"]
    return None


def _reasoning_events(n: int, index: int, deltas: int,
                      owner: str | None = None) -> tuple[list, dict]:
    item_id = f"rs_fake{n:04d}"
    where = {"item_id": item_id, "output_index": index, "summary_index": 0}
    item = {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text",
            "text": REASONING_SUMMARY}], "encrypted_content": encrypted_by(n, owner)}
    events = [("response.output_item.added", {"output_index": index, "item": {
                  "id": item_id, "type": "reasoning", "summary": []}}),
              ("response.reasoning_summary_part.added", {**where, "part": {
                  "type": "summary_text", "text": ""}})]
    events += [("response.reasoning_summary_text.delta", {**where, "delta": piece})
               for piece in _split(REASONING_SUMMARY, deltas)]
    events += [("response.reasoning_summary_text.done", {**where, "text": REASONING_SUMMARY}),
               ("response.reasoning_summary_part.done", {**where, "part": {
                   "type": "summary_text", "text": REASONING_SUMMARY}}),
               ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def _message_events(n: int, index: int, text: str, deltas: int) -> tuple[list, dict]:
    item_id = f"msg_fake{n:04d}"
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant",
            "content": [part]}
    events = [("response.output_item.added", {"output_index": index, "item": {
                  **item, "status": "in_progress", "content": []}}),
              ("response.content_part.added", {**where, "part": {**part, "text": ""}})]
    events += [("response.output_text.delta", {**where, "delta": piece})
               for piece in _split(text, deltas)]
    events += [("response.output_text.done", {**where, "text": text}),
               ("response.content_part.done", {**where, "part": part}),
               ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def _call_events(n: int, index: int, name: str, arguments: str, deltas: int) -> tuple[list, dict]:
    item_id = f"fc_fake{n:04d}"
    item = {"id": item_id, "type": "function_call", "status": "completed",
            "call_id": f"call_fake{n:04d}", "name": name, "arguments": arguments}
    where = {"item_id": item_id, "output_index": index}
    events = [("response.output_item.added", {"output_index": index, "item": {
        **item, "status": "in_progress", "arguments": ""}})]
    events += [("response.function_call_arguments.delta", {**where, "delta": piece})
               for piece in _split(arguments, max(deltas, 2))]
    events += [("response.function_call_arguments.done", {**where, "arguments": arguments}),
               ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def _compaction_events(n: int, index: int, body: dict) -> tuple[list, dict]:
    """One ``compaction`` item; its opaque content names the request and how many
    items it summarised, so a test can tell compactions apart."""
    item = {"id": f"cmp_fake{n:04d}", "type": "compaction",
            "encrypted_content": f"fake-compaction-{n:04d}-of-{len(body['input']) - 1}-items"}
    events = [("response.output_item.added", {"output_index": index, "item": item}),
              ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def fake_png(seed: int, size: int = 16) -> bytes:
    """A valid *size* x *size* RGB PNG of one colour chosen by *seed*."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    colour = bytes(((seed * 67) % 256, (seed * 131) % 256, (seed * 29 + 90) % 256))
    rows = b"".join(b"\x00" + colour * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def _image_events(n: int, index: int, tool: dict, body: dict) -> tuple[list, dict]:
    """The image_generation tool's events: partial images (as many as the tool asks),
    then the item with the final PNG; the revised prompt says what the fake was given
    (input images, a mask) so a test can check the upstream request."""
    item_id = f"ig_fake{n:04d}"
    where = {"item_id": item_id, "output_index": index}
    content = next((i.get("content") for i in reversed(body["input"])
                    if isinstance(i, dict) and i.get("role") == "user"), [])
    images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "input_image") \
        if isinstance(content, list) else 0
    revised = _last_user_text(body["input"]) + (f" [{images} input images]" if images else "") \
        + (" [masked]" if tool.get("input_image_mask") else "")
    events = [("response.output_item.added", {"output_index": index, "item": {
                  "id": item_id, "type": "image_generation_call", "status": "in_progress"}}),
              ("response.image_generation_call.in_progress", where),
              ("response.image_generation_call.generating", where)]
    for i in range(int(tool.get("partial_images") or 0)):
        events.append(("response.image_generation_call.partial_image", {
            **where, "partial_image_index": i,
            "partial_image_b64": base64.b64encode(fake_png(n * 10 + i)).decode()}))
    item = {"id": item_id, "type": "image_generation_call", "status": "completed",
            "result": base64.b64encode(fake_png(n * 10 + 9)).decode(), "revised_prompt": revised,
            "output_format": tool.get("output_format", "png"),
            "size": tool.get("size", "1024x1024"), "quality": tool.get("quality", "medium"),
            "background": tool.get("background", "opaque")}
    events += [("response.image_generation_call.completed", where),
               ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def usage_for(input_tokens: int, cached: int, answer: Answer, reasoning: bool) -> dict:
    visible = answer.text if answer.call is None else "".join(answer.call)
    reasoning_tokens = REASONING_TOKENS if reasoning else 0
    output_tokens = count_tokens(visible) + reasoning_tokens
    if answer.image is not None:
        output_tokens += IMAGE_TOKENS
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens}


def build_events(n: int, body: dict, answer: Answer, usage: dict, deltas: int,
                 owner: str | None = None) -> list[tuple]:
    """The successful event sequence of request *n* as ``(type, payload)`` pairs
    (*owner*: the account whose reasoning it encrypts)."""
    response = {"id": f"resp_fake{n:04d}", "object": "response", "created_at": int(time.time()),
                "model": body["model"], "status": "in_progress", "error": None,
                "incomplete_details": None, "output": [], "usage": None}
    events = [("response.created", {"response": response}),
              ("response.in_progress", {"response": response})]
    output = []
    if body.get("reasoning") and not answer.compaction:
        more, item = _reasoning_events(n, len(output), deltas, owner)
        events += more
        output.append(item)
    if answer.refused:
        failed = {**response, "status": "failed", "error": {
            "code": "moderation_blocked", "message": MODERATION_MESSAGE}}
        return events + [("response.failed", {"response": failed})]
    if answer.image is not None:
        more, item = _image_events(n, len(output), answer.image, body)
    elif answer.compaction:
        more, item = _compaction_events(n, len(output), body)
    elif answer.call:
        more, item = _call_events(n, len(output), *answer.call, deltas)
    else:
        more, item = _message_events(n, len(output), answer.text, deltas)
    events += more
    output.append(item)
    done = {**response, "status": "completed", "output": output, "usage": usage,
            "service_tier": body.get("service_tier") or "default"}
    events.append(("response.completed", {"response": done}))
    return events


def sse_frame(kind: str, payload: dict, sequence_number: int) -> bytes:
    data = json.dumps({"type": kind, "sequence_number": sequence_number, **payload})
    return f"event: {kind}\ndata: {data}\n\n".encode()


_ANSWER_DELTAS = ("response.output_text.delta", "response.function_call_arguments.delta")


def _cut_after_deltas(events: list[tuple], count: int = 2) -> list[tuple]:
    """The events up to the answer's *count*-th delta (or all but the terminal one)."""
    seen = 0
    for i, (kind, _) in enumerate(events):
        seen += kind in _ANSWER_DELTAS
        if seen == count:
            return events[:i + 1]
    return events[:-1]


def stream_fault(name: str, events: list[tuple], params: dict) -> tuple[list[tuple], str]:
    """Events to send for a stream fault and how the stream then ends.

    Endings: ``clean`` (terminal chunk), ``reset`` (RST, no terminal chunk),
    ``stall`` (silence for ``params.seconds``, then close without terminal chunk).
    ``reset_at_once`` resets before anything is sent (over HTTP: before the
    status line), ``reset_after_created`` right after ``response.created``: a
    connection that breaks before the answer starts.
    """
    created, in_progress = events[0], events[1]
    response = {**created[1]["response"], "status": "failed"}
    if name == "stall":
        return [created], "stall"
    if name == "reset_at_once":
        return [], "reset"
    if name == "reset_after_created":
        return [created], "reset"
    if name == "reset_mid_stream":
        return _cut_after_deltas(events), "reset"
    if name == "truncate":
        return _cut_after_deltas(events), "clean"
    if name == "response_failed":
        error = {"code": params.get("code", "server_error"), "message": params.get(
            "message", "An error occurred while processing your request.")}
        tail = ("response.failed", {"response": {**response, "error": error}})
    else:  # error_event
        tail = ("error", {"code": params.get("code", "rate_limit_exceeded"), "param": None,
                          "message": params.get("message", "Rate limit reached. "
                                                "Please try again in 1.5s.")})
    if params.get("after_output"):  # the answer started: the failure arrives mid-stream
        return _cut_after_deltas(events) + [tail], "clean"
    return [created, in_progress, tail], "clean"
