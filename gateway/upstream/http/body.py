"""gateway.upstream.http.body
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
HTTP/1.1 body framing, decoded incrementally from the bytes a socket gives.

The upstream reader (:class:`gateway.upstream.http.client.Reader`) reads the
socket itself once the answer's headers are parsed: http.client's own chunked
reading costs a ``poll`` inside every ``recv`` (a socket with a timeout), a
``readline`` per chunk size and several Python layers per event, and ``make
bench`` showed that as most of the gateway's CPU per event. These decoders are
pure: bytes in, payload out, ``done`` once the body's framing says it ended (so
the connection can go back to the pool instead of being closed).

A model streams one event per packet, so the common input is exactly one whole
chunk (``size CRLF data CRLF``); that case is one ``find`` and one slice.
"""
from __future__ import annotations

MAX_LINE = 4096  # a chunk-size or trailer line longer than this is not HTTP


class FramingError(ValueError):
    """The bytes are not a valid HTTP/1.1 body."""


_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)


class Chunked:
    """``Transfer-Encoding: chunked``; :meth:`feed` returns the payload so far."""

    __slots__ = ("_buf", "_left", "_state", "done")

    def __init__(self) -> None:
        self._buf = b""
        self._left = 0
        self._state = _SIZE
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if self._state == _SIZE and not self._buf:
            # Fast path: the packet is exactly one whole chunk.
            head = data.find(b"\r\n", 0, 18)
            # int() also takes "0x", "_", signs and spaces: those go the strict way.
            if head > 0 and data[0] != 48 and data[:head].isalnum():
                try:
                    size = int(data[:head], 16)
                except ValueError:
                    size = 0  # the slow path says what is wrong
                end = head + 2 + size
                if size > 0 and len(data) == end + 2 and data.endswith(b"\r\n"):
                    return data[head + 2:end]
        return self._feed(self._buf + data if self._buf else data)

    def _feed(self, buf: bytes) -> bytes:
        out = []
        pos, n = 0, len(buf)
        while pos < n:
            state = self._state
            if state == _DATA:
                take = min(self._left, n - pos)
                out.append(buf[pos:pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _CRLF
            elif state == _CRLF:
                if n - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise FramingError("a chunk does not end with CRLF")
                pos += 2
                self._state = _SIZE
            elif state == _SIZE or state == _TRAILER:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if n - pos > MAX_LINE:
                        raise FramingError("a chunk-size line is too long")
                    break
                line = buf[pos:nl]
                pos = nl + 1
                if state == _TRAILER:
                    if line in (b"", b"\r"):
                        self._state, self.done = _DONE, True
                    continue
                size = _size(line)
                if size:
                    self._left, self._state = size, _DATA
                else:
                    self._state = _TRAILER
            else:  # _DONE: nothing may follow the body on a connection we asked nothing more of
                raise FramingError("bytes after the end of the body")
        self._buf = buf[pos:]
        return out[0] if len(out) == 1 else b"".join(out)

    def at_eof(self) -> None:
        """The connection closed: fine only after the last chunk."""
        if not self.done:
            raise FramingError("the upstream closed the connection inside a chunked body")


def _size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    if not text or not all(c in b"0123456789abcdefABCDEF" for c in text):
        raise FramingError("a chunk size is not hexadecimal")
    return int(text, 16)


class Length:
    """A ``Content-Length`` body."""

    __slots__ = ("_left", "done")

    def __init__(self, length: int) -> None:
        self._left = length
        self.done = length == 0

    def feed(self, data: bytes) -> bytes:
        if len(data) > self._left:
            raise FramingError("more bytes than Content-Length")
        self._left -= len(data)
        self.done = not self._left
        return data

    def at_eof(self) -> None:
        if self._left:
            raise FramingError("the upstream closed the connection before Content-Length")


class UntilClose:
    """No length and not chunked: the body ends when the connection does."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    def feed(self, data: bytes) -> bytes:
        return data

    def at_eof(self) -> None:
        self.done = True
