"""gateway.sse
~~~~~~~~~~~~~~
Incremental Server-Sent-Events parsing and writing.

Upstream frames are split once into :class:`Event` objects that keep their
raw bytes, so `/v1/responses` can pass them through untouched while the chat
translator reads the decoded JSON. JSON is decoded lazily and at most once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

TERMINAL_TYPES = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "error"}
)

KEEPALIVE = b": keep-alive\n\n"


@dataclass(slots=True)
class Event:
    """One SSE frame: its ``event:`` name (or the JSON ``type``), data and raw bytes."""

    name: str
    data_text: str
    raw: bytes
    _data: object = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def data(self) -> dict | None:
        """The decoded JSON payload, or None when it is not a JSON object."""
        if not self._parsed:
            self._parsed = True
            try:
                value = json.loads(self.data_text)
            except ValueError:
                value = None
            self._data = value if isinstance(value, dict) else None
        return self._data  # type: ignore[return-value]

    @property
    def type(self) -> str:
        """The event type: the ``event:`` line, else the payload's ``type``."""
        if self.name:
            return self.name
        data = self.data
        kind = data.get("type") if data else None
        return kind if isinstance(kind, str) else ""

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES


class SSEParser:
    """Feed bytes, get complete events. Tolerates ``\\r\\n`` and comments."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        events = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            frame = buf[start:end]
            start = end + 2
            event = parse_frame(frame)
            if event is not None:
                events.append(event)
        self._buf = buf[start:]
        return events

    def flush(self) -> list[Event]:
        """Whatever is left when the stream ends (a frame without a blank line)."""
        frame, self._buf = self._buf.strip(b"\n"), b""
        event = parse_frame(frame) if frame else None
        return [event] if event is not None else []


def parse_frame(frame: bytes) -> Event | None:
    """Parse one frame (lines without the trailing blank line)."""
    name = ""
    data_lines = []
    for line in frame.split(b"\n"):
        if not line or line[0] == 58:  # ":" comment
            continue
        key, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if key == b"data":
            data_lines.append(value)
        elif key == b"event":
            name = value.decode("utf-8", "replace")
    if not data_lines:
        return None
    text = b"\n".join(data_lines).decode("utf-8", "replace")
    return Event(name, text, frame + b"\n\n")


def encode(data: dict | str, event: str | None = None) -> bytes:
    """Render one SSE frame; dicts are JSON-encoded compactly."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def make_event(payload: dict) -> Event:
    """Build an Event from a payload (used when the gateway synthesises one)."""
    kind = payload.get("type", "")
    raw = encode(payload, kind or None)
    event = Event(kind, json.dumps(payload, separators=(",", ":")), raw)
    event._data, event._parsed = payload, True
    return event
