"""gateway.security.wslimits
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A client WebSocket's limits counted on the wire, before any decoding
(docs/security.md).

:class:`FrameMeter` reads the frame headers (RFC 6455 §5.2) of the bytes a
client sends and says when to close: a frame whose declared payload is larger
than ``max_frame`` bytes, or a message whose frames add up to more than
``max_message`` bytes, is 1009 before its payload is read or decoded (a text
message counts bytes, not characters); a frame or fragmented message left
unfinished for ``timeout`` seconds is 1008. Pure: it only counts.
"""
from __future__ import annotations

import time

TOO_BIG = 1009
POLICY = 1008


class FrameMeter:
    """Counts the client's frames as bytes arrive."""

    __slots__ = ("max_message", "max_frame", "timeout", "_head", "_left", "_message",
                 "_open", "_since")

    def __init__(self, max_message: int, max_frame: int | None = None,
                 timeout: float | None = None):
        self.max_message = max_message
        self.max_frame = max_frame or max_message
        self.timeout = timeout
        self._head = b""      # an incomplete frame header
        self._left = 0        # payload bytes of the current frame still to come
        self._message = 0     # payload bytes of the data message being received
        self._open = False    # a data message has started and not ended (FIN)
        self._since: float | None = None  # when the unfinished frame or message began

    def feed(self, data: bytes, now: float | None = None) -> int | None:
        """Count *data*; a close code when the client went over a limit, else None."""
        now = time.monotonic() if now is None else now
        view, i, n = memoryview(data), 0, len(data)
        while i < n:
            if self._left:
                step = min(self._left, n - i)
                self._left -= step
                i += step
                continue
            if self._since is None:
                self._since = now
            need = _header_size(self._head + bytes(view[i:i + 14]))
            take = min(need - len(self._head), n - i)
            self._head += bytes(view[i:i + take])
            i += take
            if len(self._head) < need or need > len(self._head):
                continue
            code = self._frame(self._head)
            self._head = b""
            if code:
                return code
        if not self._head and not self._left and not self._open:
            self._since = None
        return None

    def _frame(self, head: bytes) -> int | None:
        fin, opcode = head[0] & 0x80, head[0] & 0x0F
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(head[2:4], "big")
        elif length == 127:
            length = int.from_bytes(head[2:10], "big")
        if length > self.max_frame:
            return TOO_BIG
        if opcode < 8:  # data: text, binary or a continuation
            self._message += length
            if self._message > self.max_message:
                return TOO_BIG
            self._open = not fin
            if fin:
                self._message = 0
        self._left = length
        return None

    def stalled(self, now: float | None = None) -> bool:
        """A frame or a fragmented message has been unfinished for too long."""
        if self.timeout is None or self._since is None:
            return False
        now = time.monotonic() if now is None else now
        return now - self._since > self.timeout


def _header_size(start: bytes) -> int:
    """The length of the frame header that begins with *start* (2 bytes suffice
    to know it; fewer: at least 2)."""
    if len(start) < 2:
        return 2
    length = start[1] & 0x7F
    extra = 2 if length == 126 else 8 if length == 127 else 0
    return 2 + extra + (4 if start[1] & 0x80 else 0)
