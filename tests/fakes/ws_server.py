"""tests.fakes.ws_server
~~~~~~~~~~~~~~~~~~~~~~
The server side of a WebSocket on a fake's HTTP connection (wsproto framing).

A fake's route answers the upgrade with :func:`accept` and then talks frames
through the returned :class:`ServerSocket`: ``receive(timeout)`` gives the next
text message (None on timeout, :class:`Gone` when the peer left), ``send`` one
text message, ``close`` and ``reset`` end it cleanly or with a TCP RST (a fake
breaking on purpose). Every byte read is counted in ``bytes_in``.
"""
from __future__ import annotations

import select
import socket
import struct

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import generate_accept_token



def readable(sock, timeout: float) -> bool:
    """Whether *sock* has something to read within *timeout* seconds. poll, not
    select: select refuses descriptors above 1023, which a long test run reaches."""
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poll.poll(max(timeout, 0.0) * 1000))

class Gone(Exception):
    """The peer closed the socket (or it broke)."""


def accept(req, headers: dict) -> "ServerSocket":
    """Answer *req*'s upgrade with 101 (plus *headers*) and take the connection over."""
    key = req.headers.get("Sec-WebSocket-Key", "").strip()
    req.send_response(101)
    req.send_header("Upgrade", "websocket")
    req.send_header("Connection", "Upgrade")
    req.send_header("Sec-WebSocket-Accept", generate_accept_token(key.encode()).decode())
    for name, value in headers.items():
        req.send_header(name, str(value))
    req.end_headers()
    req.headers_sent = True
    req.close_connection = True
    # One event per frame, each flushed at once, as the backend streams (Nagle would
    # hold the second small frame for the peer's delayed ACK: ~40 ms).
    req.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ServerSocket(req.connection)


class ServerSocket:
    def __init__(self, sock):
        self.sock = sock
        self.conn = Connection(ConnectionType.SERVER)
        self.pending: list = []
        self.parts: list = []
        self.bytes_in = 0
        self.closed = False

    def receive(self, timeout: float):
        """The next complete message (str or bytes), or None after *timeout*."""
        while not self.pending:
            if self.closed:
                raise Gone()
            try:
                ready = readable(self.sock, timeout)
            except (OSError, ValueError):
                raise Gone() from None
            if not ready:
                return None
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                raise Gone()
            self.bytes_in += len(data)
            self.conn.receive_data(data)
            for event in self.conn.events():
                if isinstance(event, (TextMessage, BytesMessage)):
                    self.parts.append(event.data)
                    if event.message_finished:
                        joiner = "" if isinstance(event, TextMessage) else b""
                        self.pending.append(joiner.join(self.parts))
                        self.parts = []
                elif isinstance(event, Ping):
                    self._write(self.conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if self.conn.state is ConnectionState.REMOTE_CLOSING:
                        self._write(self.conn.send(event.response()))
                    self.closed = True
                    raise Gone()
        return self.pending.pop(0)

    def send(self, text: str) -> bool:
        """Send a text message; False when the peer is gone."""
        if self.closed or self.conn.state is not ConnectionState.OPEN:
            return False
        return self._write(self.conn.send(TextMessage(data=text)))

    def _write(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def close(self, code: int = 1000) -> None:
        if not self.closed and self.conn.state is ConnectionState.OPEN:
            self._write(self.conn.send(CloseConnection(code=code)))
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def reset(self) -> None:
        """End with a TCP RST, no close frame: a connection that broke."""
        self.closed = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass
