"""gateway.clientws.connection
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The client's WebSocket on the socket gunicorn hands over, in the request's own thread.

wsproto (sans-I/O, python-hyper) does the framing; this module does the I/O:
the handshake answer, reads with a timeout (so the caller can notice a graceful
shutdown or a client that left), pings, close codes. No extra thread per
connection, no monkey-patching: a WebSocket costs one gthread worker thread,
like an SSE stream. permessage-deflate is declined (Codex works without it, and
it would cost CPU and memory per connection).
"""
from __future__ import annotations

import base64
import binascii
import select
import socket
import time
from collections import deque

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Ping
from wsproto.events import Message as _Message
from wsproto.utilities import generate_accept_token

from ..jsonio import dumps_text
from ..wsframe import Assembler, Closing, TooBig, answer_control, text_frame
from ..security.wslimits import FrameMeter

READ_SIZE = 65536
GOING_AWAY = 1001
TOO_BIG = 1009
INTERNAL_ERROR = 1011


class Closed(Exception):
    """The connection is over (the client closed it, went away, or a write failed)."""

    def __init__(self, code: int = 1006, reason: str = ""):
        super().__init__(f"websocket closed ({code})")
        self.code = code
        self.reason = reason


def valid_key(key: str | None) -> bool:
    """A ``Sec-WebSocket-Key``: base64 of 16 bytes (RFC 6455 §4.1)."""
    if not key:
        return False
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def handshake_response(key: str) -> bytes:
    """The ``101 Switching Protocols`` answer to an upgrade with *key*."""
    accept = generate_accept_token(key.strip().encode()).decode()
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode()


class WebSocket:
    """One server-side WebSocket over a connected, blocking *sock*.

    ``receive(timeout)`` returns the next complete message (``str`` for text,
    ``bytes`` for binary) or None when *timeout* passed; control frames are
    answered on the way. Any end of the connection raises :class:`Closed`.
    """

    def __init__(self, sock, max_message_bytes: int, send_timeout: float = 60.0, *,
                 max_frame_bytes: int | None = None, frame_timeout: float | None = None):
        self.sock = sock
        self.max_message_bytes = max_message_bytes
        # limits in bytes on the wire, before wsproto decodes anything (gateway.security.wslimits)
        self.meter = FrameMeter(max_message_bytes, max_frame_bytes, frame_timeout)
        self.conn = Connection(ConnectionType.SERVER)
        self.pending: deque = deque()
        self.last_sent = time.monotonic()
        self._messages = Assembler(max_message_bytes)
        self._poll = None
        sock.settimeout(send_timeout)  # bounds a write to a client that stopped reading

    # -- sending ------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:  # timeout, EPIPE, reset, closed socket
            raise Closed(1006, type(exc).__name__) from None
        self.last_sent = time.monotonic()

    def send_text(self, text: str) -> None:
        self._write(self.encode_texts([text]))

    def send_texts(self, texts: list[str]) -> None:
        """Several text messages in one write (what the upstream sent together)."""
        self._write(self.encode_texts(texts))

    def encode_texts(self, texts: list[str]) -> bytes:
        """The frames of several text messages, for a writer of its own
        (gateway.relay); counted as sent now."""
        if self.conn.state is not ConnectionState.OPEN:
            raise Closed(1006, "not open")
        self.last_sent = time.monotonic()
        return b"".join([text_frame(text) for text in texts])  # what wsproto would write

    def encode_ping(self) -> bytes:
        if self.conn.state is not ConnectionState.OPEN:
            raise Closed(1006, "not open")
        self.last_sent = time.monotonic()
        return self.conn.send(Ping(payload=b""))

    def send_json(self, value) -> None:
        self.send_text(dumps_text(value))

    def ping(self) -> None:
        if self.conn.state is ConnectionState.OPEN:
            self._write(self.encode_ping())

    # -- receiving ------------------------------------------------------------------

    def _readable(self, timeout: float) -> bool:
        pending = getattr(self.sock, "pending", None)  # TLS: bytes already decrypted
        if pending is not None and pending():
            return True
        # poll, not select: select refuses a descriptor above 1023, which a worker
        # holding many connections reaches (its WebSockets then closed at once, 1006)
        poll = self._poll
        if poll is None:
            poll = self._poll = select.poll()
            try:
                poll.register(self.sock.fileno(), select.POLLIN | select.POLLPRI)
            except (OSError, ValueError):
                raise Closed(1006, "socket error") from None
        try:
            return bool(poll.poll(max(timeout, 0.0) * 1000))
        except (OSError, ValueError):
            raise Closed(1006, "socket error") from None

    def _read(self) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except (socket.timeout, BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            raise Closed(1006, "connection lost")
        over = self.meter.feed(data)
        if over or self.meter.stalled():
            self._refuse(over or 1008, "message too big" if over else "frame not finished in time")
        self.conn.receive_data(data)
        for event in self.conn.events():
            if isinstance(event, _Message):
                try:
                    message = self._messages.add(event)
                except TooBig:
                    self._refuse(TOO_BIG, "message too big")
                if message is not None:
                    self.pending.append(message)
                continue
            try:
                answer_control(self.conn, event, self._write)
            except Closing as closing:
                raise Closed(closing.code, closing.reason) from None

    def _refuse(self, code: int, reason: str):
        """Close with *code* and end; what the client still sends is read and
        dropped for a moment (never decoded), so it sees the close frame."""
        self.close(code, reason, wait=0)
        deadline = time.monotonic() + 1.0
        try:
            while self._readable(deadline - time.monotonic()) and self.sock.recv(READ_SIZE):
                pass
        except (OSError, Closed):
            pass
        raise Closed(code, reason)

    def receive(self, timeout: float):
        """The next message, or None after *timeout* seconds without one."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._readable(remaining):
                if self.meter.stalled():
                    self._refuse(1008, "frame not finished in time")
                return None
            self._read()
        return self.pending.popleft()

    def poll(self) -> None:
        """Read what has arrived without waiting: answers pings, queues messages,
        raises :class:`Closed` if the client closed or went away."""
        while self._readable(0):
            self._read()

    # -- closing --------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "", wait: float = 1.0) -> None:
        """Send a close frame and wait briefly for the client's; never raises."""
        if self.conn.state is not ConnectionState.OPEN:
            return
        try:
            self._write(self.conn.send(CloseConnection(code=code, reason=reason)))
            deadline = time.monotonic() + wait
            while self.conn.state is not ConnectionState.CLOSED:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._readable(remaining):
                    break
                self._read()
        except Closed:
            pass

    def shutdown(self) -> None:
        """End the TCP connection now (the server closes the file descriptor)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# -- graceful shutdown of the worker ---------------------------------------------------

def _never() -> bool:
    return False


_stopping = _never


def watch_worker(worker) -> None:
    """gunicorn ``post_worker_init``: open WebSockets watch this worker's ``alive``
    flag, so a graceful stop (reload, stop, max_requests) lets their running
    response finish and then closes them with 1001 (going away)."""
    global _stopping
    _stopping = lambda: not worker.alive  # noqa: E731


def stopping() -> bool:
    return _stopping()
