"""gateway.dialects.responses.ws_memory
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
What one WebSocket connection remembers of the responses it produced.

Codex CLI over WebSocket sends ``previous_response_id`` plus only the items that
came after that response, trusting the server to know the rest. The upstream is
reached over HTTP with ``store: false``, so it knows nothing: the connection
keeps, for each response it produced, the full input that led to it and its
output items, and turns a delta frame back into the full input an HTTP upstream
needs (``expand``).

The memory lives and dies with its connection: no other worker, thread or
connection ever needs it (Codex opens one socket per process, and a new socket
starts with a full request). It is bounded in entries and in bytes, oldest
first out; the newest entry is always kept, since it is the one the next frame
refers to. An id it does not know (evicted, another connection's, invented) is
``previous_response_not_found``: Codex then resends the whole request.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ...errors import GatewayError, bad_request
from ...jsonio import dumps

MAX_ENTRIES = 32
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One produced response: the full input that led to it, and its output items."""

    input: tuple
    output: tuple
    size: int  # bytes of input + output as JSON (shared items are counted per entry)


class ConnectionMemory:
    """response id → :class:`Entry`, for one connection, bounded."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._entries

    @property
    def bytes(self) -> int:
        return self._bytes

    def expand(self, frame: dict) -> list:
        """The full input of *frame*: its own ``input`` when it names no previous
        response, else that response's input + output + the frame's items.

        Without ``previous_response_id`` the input is returned as sent, for the
        request validation to judge. Raises a 400 ``GatewayError``:
        ``previous_response_not_found`` for an id this connection does not hold,
        ``invalid_request`` for a malformed id or input.
        """
        previous = frame.get("previous_response_id")
        if previous is None:
            return frame.get("input")
        items = _items(frame.get("input"))
        if not isinstance(previous, str) or not previous:
            raise bad_request("'previous_response_id' must be a non-empty string.",
                              param="previous_response_id")
        entry = self._entries.get(previous)
        if entry is None:
            raise GatewayError(
                400, f"Previous response with id '{_shorten(previous)}' not found on this "
                "connection. Send the full input without previous_response_id.",
                code="previous_response_not_found", param="previous_response_id")
        return [*entry.input, *entry.output, *items]

    def remember(self, response_id: str, full_input: list, output: list,
                 size: int | None = None) -> None:
        """Keep what a completed response needs to be continued; evicts the oldest
        entries beyond the bounds (never the one just added)."""
        if not isinstance(response_id, str) or not response_id:
            return
        if size is None:
            size = len(dumps(list(full_input))) + len(dumps(list(output)))
        old = self._entries.pop(response_id, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[response_id] = Entry(tuple(full_input), tuple(output), size)
        self._bytes += size
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries
                                          or self._bytes > self.max_bytes):
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def clear(self) -> None:
        """Free everything (the connection closed)."""
        self._entries.clear()
        self._bytes = 0


def _items(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise bad_request("'input' must be a string or an array of input items.", param="input")
    return list(value)


def _shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
