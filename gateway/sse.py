"""gateway.sse
~~~~~~~~~~~~~~
Incremental Server-Sent-Events parsing and writing.

Upstream frames are split once into :class:`Event` objects that keep their
raw bytes, so `/v1/responses` can pass them through untouched while the chat
translator reads the decoded JSON. JSON is decoded lazily and at most once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .jsonio import dumps_text, loads
from .protocol import TERMINAL


KEEPALIVE = b": keep-alive\n\n"


@dataclass(slots=True)
class Event:
    """One event: its ``event:`` name (or the JSON ``type``), data and SSE bytes.

    An event read from SSE keeps the bytes it came in; one that came another way
    (a backend WebSocket message) gets them only if something asks (the Responses
    SSE pass-through), so no other path frames it as SSE."""

    name: str
    data_text: str
    _raw: bytes | None = field(default=None, repr=False)
    _data: object = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def raw(self) -> bytes:
        """The event as one SSE frame (built once, when first asked for)."""
        raw = self._raw
        if raw is None:
            text = self.data_text
            if "\n" in text or "\r" in text:  # one data: line, as the upstream sends
                try:
                    text = dumps_text(loads(text))
                except ValueError:
                    text = text.replace("\r", "").replace("\n", "\ndata: ")
            raw = self._raw = encode(text, self.name or None)
        return raw

    @property
    def data(self) -> dict | None:
        """The decoded JSON payload, or None when it is not a JSON object."""
        if not self._parsed:
            self._parsed = True
            try:
                value = loads(self.data_text)
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
        return self.type in TERMINAL


class SSEParser:
    """Feed bytes, get complete events. Tolerates ``\\r\\n`` and comments."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[Event]:
        if not self._buf and chunk.endswith(b"\n\n") and chunk.find(b"\n\n") == len(chunk) - 2 \
                and b"\r" not in chunk:
            # Fast path: exactly one whole frame (an upstream flushing event by event).
            event = parse_frame(chunk[:-2], chunk)
            return [event] if event is not None else []
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


def parse_frame(frame: bytes, raw: bytes | None = None) -> Event | None:
    """Parse one frame (lines without the trailing blank line); *raw*, when
    given, is the frame with its blank line (saves a copy)."""
    # Fast path: the upstream's own shape, ``event: NAME\ndata: JSON``.
    if frame.startswith(b"event: "):
        nl = frame.find(b"\n")
        if nl > 0 and frame.startswith(b"data: ", nl + 1) and frame.find(b"\n", nl + 1) < 0:
            return Event(frame[7:nl].decode("utf-8", "replace"),
                         frame[nl + 7:].decode("utf-8", "replace"), raw or frame + b"\n\n")
    elif frame.startswith(b"data: ") and frame.find(b"\n") < 0:
        return Event("", frame[6:].decode("utf-8", "replace"), raw or frame + b"\n\n")
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
    return Event(name, text, raw or frame + b"\n\n")


def encode(data: dict | str, event: str | None = None) -> bytes:
    """Render one SSE frame; dicts are JSON-encoded compactly."""
    text = data if isinstance(data, str) else dumps_text(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def make_event(payload: dict) -> Event:
    """Build an Event from a payload (used when the gateway synthesises one)."""
    kind = payload.get("type", "")
    text = dumps_text(payload)
    event = Event(kind, text, encode(text, kind or None))
    event._data, event._parsed = payload, True
    return event
