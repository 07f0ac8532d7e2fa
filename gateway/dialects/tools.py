"""gateway.dialects.tools
~~~~~~~~~~~~~~~~~~~~~~~~~~
Tool names, call ids and call arguments that every translated dialect needs
the same way.

All are deterministic (hashes, never random) so a conversation's history maps
to the same upstream input on every turn and its prompt prefix stays cacheable.
"""
from __future__ import annotations

import hashlib
import json

# A function tool declared without a schema: an object that takes nothing.
EMPTY_SCHEMA = {"type": "object", "properties": {}}


def shorten_tool_name(name: str, limit: int = 64) -> str:
    """Deterministic short name: a prefix plus a hash, so distinct names stay distinct."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return name[: limit - 9] + "_" + digest if limit > 9 else digest[:limit]


def arguments_json(value) -> str:
    """Tool-call arguments (an object) as the compact JSON string Responses
    wants (Messages ``tool_use.input``, Gemini ``functionCall.args``).

    The standard library on purpose, like the continuity fingerprints: these
    bytes are part of the cached prompt prefix and must not change between
    releases. Key order is the client's.
    """
    if isinstance(value, str):
        return value
    return json.dumps({} if value is None else value, separators=(",", ":"), ensure_ascii=False)


def tool_input(arguments) -> dict:
    """Function-call arguments (Responses' JSON string) -> the object a client
    reads (Messages ``tool_use.input``, Gemini ``functionCall.args``).

    Both require an object; arguments that are not one are kept under
    ``_arguments`` so nothing the model wrote is lost silently.
    """
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_arguments": arguments}
    return value if isinstance(value, dict) else {"_arguments": arguments}


def stable_call_id(msg_index: int, call_index: int, name: str, arguments: str) -> str:
    """An id for a tool call the client sent without one; same history -> same id."""
    key = f"{msg_index}\x00{call_index}\x00{name}\x00{arguments}".encode()
    return "call_" + hashlib.sha256(key).hexdigest()[:24]


class ToolNames:
    """Shortens tool names and remembers how to restore them."""

    __slots__ = ("limit", "restore")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.restore: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if len(name) <= self.limit:
            return name
        short = shorten_tool_name(name, self.limit)
        self.restore[short] = name
        return short
