"""gateway.dialects.messages.count_tokens
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``POST /v1/messages/count_tokens``: an estimate, not a count.

The upstream has no counting endpoint and the gateway downloads no
tokenizer, so the request is translated exactly as ``/v1/messages`` would
send it and measured: **UTF-8 bytes of the text the model reads, divided
by 4, rounded up**, plus 4 tokens per input item (role and framing). The
text is the instructions, every message part, call arguments and outputs,
reasoning summaries, and the tool definitions as compact JSON. Images and
files count a flat 1,600 tokens each: their byte size says little about
what they cost. Encrypted reasoning is not counted (its size is not its
token count). Bytes/4 is the usual rule of thumb for English and code;
it is rough for other scripts. Clients use the number to decide when to
compact; Claude Code 2.1 never calls this endpoint.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from .request import translate_request

BYTES_PER_TOKEN = 4
ITEM_OVERHEAD = 4
ATTACHMENT_TOKENS = 1600


def count_tokens(body: dict, headers: Mapping | None = None) -> dict:
    """The ``/v1/messages/count_tokens`` answer for a Messages body."""
    return {"input_tokens": estimate_input_tokens(translate_request(body, headers).responses)}


def estimate_input_tokens(responses: dict) -> int:
    """Estimated input tokens of a normalised Responses request (see module doc)."""
    size = 0
    flat = 0
    instructions = responses.get("instructions")
    if isinstance(instructions, str):
        size += _bytes(instructions)
    items = responses.get("input")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        flat += ITEM_OVERHEAD
        kind = item.get("type")
        if kind == "message":
            s, f = _parts(item.get("content"))
            size, flat = size + s, flat + f
        elif kind == "function_call":
            size += _bytes(item.get("name")) + _bytes(item.get("arguments"))
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, str):
                size += _bytes(output)
            else:
                s, f = _parts(output)
                size, flat = size + s, flat + f
        elif kind == "reasoning":
            s, _ = _parts(item.get("summary"))
            size += s
    tools = responses.get("tools")
    if isinstance(tools, list) and tools:
        size += len(json.dumps(tools, separators=(",", ":"), ensure_ascii=False).encode())
    return -(-size // BYTES_PER_TOKEN) + flat


def _bytes(text) -> int:
    return len(text.encode("utf-8", "replace")) if isinstance(text, str) else 0


def _parts(parts) -> tuple[int, int]:
    """(text bytes, flat tokens) of a content part list."""
    size = flat = 0
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") in ("input_image", "input_file"):
            flat += ATTACHMENT_TOKENS
        else:
            size += _bytes(part.get("text"))
    return size, flat
