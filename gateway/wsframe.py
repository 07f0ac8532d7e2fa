"""gateway.wsframe
~~~~~~~~~~~~~~~~~~~
WebSocket framing shared by both sides: the client WebSocket the gateway
serves (:mod:`gateway.clientws`) and the backend's it opens
(:mod:`gateway.upstream.ws`). wsproto keeps the protocol state; this module
holds what both sides do with its events (:class:`Assembler`: message parts
into whole messages; :func:`answer_control`: pings and the closing handshake)
and the fast paths around it.

The backend's usual packet, read without wsproto.

Every answer event comes from the Codex backend as one small, whole,
unfragmented, unmasked text frame, mostly one per packet; wsproto's general
frame parser spends ~8 µs on each (about half of what a relayed event costs
over the backend's socket, ``make bench``). :class:`Splitter` takes the
packets first: a packet that is exactly a run of such frames gives its
messages directly; anything else (a ping, a close, a fragment, a frame split
over packets) is handed to wsproto whole, while the splitter keeps track of
where frames begin so it knows when the next packet starts on a frame of its
own again. wsproto therefore only ever misses whole text frames between two
frame boundaries, outside a fragmented message: its state is the same as if
it had read them.

:func:`text_frame` writes the other way what a server sends most: one whole,
unmasked text frame (wsproto's ``send`` costs 2.6 µs a frame, this 0.2 µs).

Pure: bytes in, messages out; no sockets (a write is a callable handed in).
"""
from __future__ import annotations

from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Ping, TextMessage

_TEXT_FIN = 0x81  # FIN, no RSV bits (no extension is negotiated), opcode text


class Splitter:
    """Feed every received packet; ``feed`` returns the text messages when the
    packet was only whole text frames, else None (give the packet to wsproto)."""

    __slots__ = ("_left", "_head", "_fragment", "_owed")

    def __init__(self, after_handshake: bytes = b"") -> None:
        self._left = 0          # payload bytes of the current frame still to come
        self._head = b""        # the start of a frame header split over packets
        self._fragment = False  # inside a fragmented data message
        # Bytes that came with the upgrade's answer are in wsproto already: the next
        # packet goes to wsproto too, so its frames come out first and in order.
        self._owed = bool(after_handshake)
        self._walk(after_handshake)

    def feed(self, data: bytes) -> list[str] | None:
        if not (self._left or self._head or self._fragment or self._owed):
            messages = _whole_text_frames(data)
            if messages is not None:
                return messages
        self._owed = False  # the caller gives this packet to wsproto and reads its events
        self._walk(data)
        return None

    def _walk(self, data: bytes) -> None:
        """Follow the frame boundaries through *data* (given to wsproto)."""
        if self._head:
            data, self._head = self._head + data, b""
        i, n = 0, len(data)
        while True:
            if self._left:
                step = min(self._left, n - i)
                self._left -= step
                i += step
                if self._left:
                    return
            if i >= n:
                return
            parsed = _header(data, i)
            if parsed is None:
                self._head = data[i:]
                return
            start, length, opcode, fin = parsed
            if opcode in (0x1, 0x2):
                self._fragment = not fin
            elif opcode == 0x0 and fin:
                self._fragment = False
            i, self._left = start, length


def _header(data: bytes, i: int):
    """(payload start, payload length, opcode, fin) of the frame at *i*, or None
    when its header is not all there."""
    n = len(data)
    if n - i < 2:
        return None
    b0, b1 = data[i], data[i + 1]
    length = b1 & 0x7F
    at = i + 2
    if length == 126:
        if n - at < 2:
            return None
        length = int.from_bytes(data[at:at + 2], "big")
        at += 2
    elif length == 127:
        if n - at < 8:
            return None
        length = int.from_bytes(data[at:at + 8], "big")
        at += 8
    if b1 & 0x80:  # masked (a server must not, but the boundary is what matters here)
        if n - at < 4:
            return None
        at += 4
    return at, length, b0 & 0x0F, bool(b0 & 0x80)


def _whole_text_frames(data: bytes) -> list[str] | None:
    out = []
    i, n = 0, len(data)
    while i < n:
        if data[i] != _TEXT_FIN or n - i < 2 or data[i + 1] & 0x80:  # unmasked text, FIN
            return None
        parsed = _header(data, i)
        if parsed is None or n - parsed[0] < parsed[1]:
            return None  # the frame goes on in the next packet
        start, length = parsed[0], parsed[1]
        try:
            out.append(data[start:start + length].decode("utf-8"))
        except UnicodeDecodeError:
            return None  # wsproto says what is wrong with it
        i = start + length
    return out or None


def text_frame(text: str) -> bytes:
    """One whole, unmasked text frame (a server's; no extension negotiated).
    wsproto's state does not change when it sends one, so the two can be mixed."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        return b"\x81" + bytes((n,)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


# -- what both sides do with wsproto's events ------------------------------------------------

class TooBig(Exception):
    """A message grew past the limit."""


class Closing(Exception):
    """The peer closed the connection (its close frame answered when it asked)."""

    def __init__(self, code, reason: str = ""):
        super().__init__(f"websocket closed ({code})")
        self.code = code
        self.reason = reason


class Assembler:
    """Message parts (wsproto ``TextMessage``/``BytesMessage``) into whole
    messages (``str``/``bytes``), at most *limit* bytes each (None: no limit)."""

    __slots__ = ("_parts", "_size", "limit")

    def __init__(self, limit: int | None = None) -> None:
        self._parts: list = []
        self._size = 0
        self.limit = limit

    def add(self, event):
        """The whole message once *event* finished it, else None; raises :class:`TooBig`."""
        self._parts.append(event.data)
        if self.limit is not None:
            self._size += len(event.data)
            if self._size > self.limit:
                self._parts, self._size = [], 0
                raise TooBig()
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(event, TextMessage):
            return "".join(parts)
        return b"".join(bytes(p) for p in parts)


def answer_control(conn, event, write) -> None:
    """A ping gets its pong; a close frame gets the closing handshake's answer
    (best effort) and raises :class:`Closing`. *write* sends bytes."""
    if isinstance(event, Ping):
        write(conn.send(event.response()))
    elif isinstance(event, CloseConnection):
        if conn.state is ConnectionState.REMOTE_CLOSING:
            try:
                write(conn.send(event.response()))
            except Exception:  # noqa: BLE001 - either side's write error: it is closing anyway
                pass
        raise Closing(event.code, event.reason or "")
