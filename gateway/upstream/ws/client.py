"""gateway.upstream.ws.client
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A WebSocket client to the Codex backend's Responses socket, on wsproto.

The backend serves ``GET {base}/responses`` as a WebSocket (``wss://`` for
``https://``) when asked with the HTTP request's headers plus
``OpenAI-Beta: responses_websockets=2026-02-06`` (what Codex CLI sends on its
own upgrade). Each request is one JSON text frame
``{"type": "response.create", ...body}``; each answer event comes back as one
JSON text frame, the same objects as the SSE stream's ``data:``.

This module is only the wire: connect (TLS through ``ssl``), the upgrade, text
frames in and out with a timeout per wait, pings, closing. Like
the HTTP client, it is a failure boundary: socket, TLS and protocol errors are
raised as the gateway's own ``TransportError`` kinds, and a refused upgrade is
:class:`Refused` with the backend's status, headers and body, so the caller can
treat it exactly like an HTTP answer. No thread of its own: the request's thread
reads, as it reads an HTTP stream. permessage-deflate is not offered (Codex works
without it; it would cost CPU and memory per socket).
"""
from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Ping, Pong,
                            RejectConnection, RejectData, Request, TextMessage)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ...errors import UpstreamBroken, UpstreamConnectTimeout, UpstreamTimeout, UpstreamUnreachable
from ... import wsframe

BETA = "responses_websockets=2026-02-06"
READ_SIZE = 65536
# Headers of the HTTP request that describe an HTTP body, or that wsproto writes itself.
_NOT_FORWARDED = frozenset({
    "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-extensions", "sec-websocket-protocol", "content-type", "content-length",
    "transfer-encoding", "accept", "accept-encoding",
})


class Refused(Exception):
    """The backend answered the upgrade with something other than 101."""

    def __init__(self, status: int, headers, body: bytes):
        super().__init__(f"websocket upgrade refused ({status})")
        self.status = status
        self.headers = headers
        self.body = body


def socket_url(http_url: str) -> str:
    """``https://…/responses`` → ``wss://…/responses`` (``http`` → ``ws``)."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[8:]
    if http_url.startswith("http://"):
        return "ws://" + http_url[7:]
    return http_url


def upgrade_headers(headers: dict) -> list[tuple[bytes, bytes]]:
    """The HTTP request's headers for the upgrade, plus the backend's beta flag
    (a client's own ``responses_websockets=`` value is kept)."""
    out = []
    beta = None
    for name, value in headers.items():
        lname = name.lower()
        if lname in _NOT_FORWARDED or value is None:
            continue
        if lname == "openai-beta":
            beta = value
            continue
        out.append((name.encode("latin-1", "replace"), str(value).encode("utf-8")))
    if not beta or "responses_websockets=" not in beta:
        beta = f"{beta}, {BETA}" if beta else BETA
    out.append((b"OpenAI-Beta", beta.encode("utf-8")))
    return out


def connect(url: str, headers: dict, connect_timeout: float, read_timeout: float,
            ssl_context: ssl.SSLContext | None = None) -> "Socket":
    """Open the socket and upgrade; raises :class:`Refused` or a ``TransportError``."""
    parts = urlsplit(socket_url(url))
    tls = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if tls else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
    except socket.timeout:
        raise UpstreamConnectTimeout(f"connecting to {host}:{port}") from None
    except OSError as exc:
        raise UpstreamUnreachable(f"{host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl_context or ssl.create_default_context()
            sock = ctx.wrap_socket(sock, server_hostname=host)
        conn = WSConnection(ConnectionType.CLIENT)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        sock.sendall(conn.send(Request(host=netloc, target=target,
                                       extra_headers=upgrade_headers(headers))))
        return _handshake(sock, conn, read_timeout)
    except BaseException as exc:
        _close_quietly(sock)
        if isinstance(exc, (Refused, UpstreamBroken, UpstreamTimeout, UpstreamUnreachable)):
            raise
        if isinstance(exc, socket.timeout):
            raise UpstreamTimeout("waiting for the websocket upgrade") from None
        if isinstance(exc, ssl.SSLError):
            raise UpstreamUnreachable(f"TLS: {exc}") from None
        if isinstance(exc, (OSError, LocalProtocolError, RemoteProtocolError)):
            raise UpstreamBroken(f"websocket upgrade: {exc}") from None
        raise


def _handshake(sock, conn: WSConnection, read_timeout: float) -> "Socket":
    deadline = time.monotonic() + read_timeout
    status, head, body = 0, None, b""
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamTimeout("waiting for the websocket upgrade")
        sock.settimeout(remaining)
        data = sock.recv(READ_SIZE)
        received += data
        conn.receive_data(data or None)
        for event in conn.events():
            if isinstance(event, AcceptConnection):
                end = received.find(b"\r\n\r\n")
                after = received[end + 4:] if end >= 0 else b""
                return Socket(sock, conn, _headers(event.extra_headers), after)
            if isinstance(event, RejectConnection):
                status, head = event.status_code, _headers(event.headers)
                if not event.has_body:
                    raise Refused(status, head, b"")
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished:
                    raise Refused(status, head, body)
        if not data:
            if status:
                raise Refused(status, head, body)
            raise UpstreamBroken("the upstream closed the connection during the upgrade")


def _headers(pairs) -> CaseInsensitiveDict:
    return CaseInsensitiveDict({bytes(k).decode("latin-1"): bytes(v).decode("latin-1")
                                for k, v in pairs})


def _close_quietly(sock) -> None:
    try:
        sock.close()
    except OSError:
        pass


class Socket:
    """One open upstream WebSocket (client side), used by one thread at a time.

    ``receive(timeout)`` returns the next text message, or None when *timeout*
    passed; pings are answered on the way. The end of the connection (a close
    frame, EOF, a reset) raises ``UpstreamBroken``.
    """

    def __init__(self, sock, conn: WSConnection, headers, after_handshake: bytes = b""):
        self.sock = sock
        self.conn = conn
        self._splitter = wsframe.Splitter(after_handshake)
        self.headers = headers  # the 101 answer's headers
        self.opened = time.monotonic()
        self.last_used = self.opened   # the last turn (the pool's idle clock)
        self.last_heard = self.opened  # the last bytes from the backend (pongs included)
        self._assembler = wsframe.Assembler()
        self._messages: list[str] = []
        self._pong = False
        self._short_read = True
        self._tls = hasattr(sock, "pending")
        self.closed = False

    # -- sending -----------------------------------------------------------
    def send_text(self, text: str) -> int:
        """Send one text message; the number of bytes written (frame included)."""
        return self._write(self._frame(TextMessage(data=text)))

    def _frame(self, event) -> bytes:
        if self.closed or self.conn.state is not ConnectionState.OPEN:
            raise UpstreamBroken("the upstream websocket is closed")
        try:
            return self.conn.send(event)
        except LocalProtocolError as exc:
            raise UpstreamBroken(f"websocket send: {exc}") from None

    def _write(self, data: bytes) -> int:
        if self.closed:
            raise UpstreamBroken("the upstream websocket is closed")
        try:
            self.sock.settimeout(30.0)  # bounds a write to a backend that stopped reading
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            self.abort()
            raise UpstreamBroken(f"websocket send: {exc}") from None
        self.last_used = time.monotonic()
        return len(data)

    # -- receiving ---------------------------------------------------------
    def receive(self, timeout: float) -> str | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._messages:
            remaining = deadline - time.monotonic()
            if not self._fill(remaining):
                return None
        return self._messages.pop(0)

    def receive_ready(self) -> list[str] | None:
        """Every whole message that has arrived, without waiting; None when there
        is none yet (a loop waits on :attr:`sock` for more: gateway.relay). Reads
        until the socket is empty, TLS records included (``epoll`` cannot see
        decrypted bytes that TLS holds)."""
        while True:
            if not self._fill(0):
                break
            if self._short_read and not self._tls:
                break  # a short read took all the kernel had: no EAGAIN to provoke
            # TLS: read on until it says so; it may hold bytes of records it has read
            # ahead that neither epoll nor pending() can see.
        if not self._messages:
            return None
        ready, self._messages = self._messages, []
        return ready

    def _fill(self, timeout: float) -> bool:
        """Read once (waiting at most *timeout*); False when nothing came in time."""
        if self.closed:
            raise UpstreamBroken("the upstream websocket is closed")
        try:
            wait = max(timeout, 0.0)
            if self.sock.gettimeout() != wait:  # a system call saved on every relayed read
                self.sock.settimeout(wait)
            data = self.sock.recv(READ_SIZE)
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            self._short_read = True
            return False
        except (OSError, ValueError) as exc:
            self.abort()
            raise UpstreamBroken(f"websocket read: {exc}") from None
        self._short_read = len(data) < READ_SIZE
        if not data:
            self.abort()
            raise UpstreamBroken("the upstream closed the websocket")
        self.last_heard = time.monotonic()
        messages = self._splitter.feed(data)
        if messages is not None:  # whole text frames only: the usual event packet
            self._messages += messages
            return True
        try:
            self.conn.receive_data(data)
            events = list(self.conn.events())
        except RemoteProtocolError as exc:
            self.abort()
            raise UpstreamBroken(f"websocket protocol: {exc}") from None
        for event in events:
            if isinstance(event, TextMessage):
                message = self._assembler.add(event)
                if message is not None:
                    self._messages.append(message)
            elif isinstance(event, Pong):
                self._pong = True
            elif not isinstance(event, BytesMessage):  # the backend speaks JSON text
                try:
                    wsframe.answer_control(self.conn, event, self._write)
                except wsframe.Closing as closing:
                    self.abort()
                    raise UpstreamBroken(f"the upstream closed the websocket ({closing.code}"
                                         f"{': ' + closing.reason if closing.reason else ''})"
                                         ) from None
        return True

    def alive(self) -> bool:
        """Process what arrived while the socket was idle, without waiting:
        False if the backend closed it (or it broke)."""
        try:
            while self._fill(0):
                pass
        except UpstreamBroken:
            return False
        self._messages.clear()  # nothing is expected between responses
        return True

    def ping(self) -> None:
        self._write(self._frame(Ping(payload=b"gw")))

    def probe(self, timeout: float) -> bool:
        """A ping answered within *timeout*: the path to the backend still works
        (a socket idle for long may have been dropped silently by a middlebox)."""
        self._pong = False
        try:
            self.ping()
            deadline = time.monotonic() + timeout
            while not self._pong:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._fill(remaining)
        except UpstreamBroken:
            return False
        self._messages.clear()
        return True

    # -- the end -----------------------------------------------------------
    def close(self, code: int = 1000) -> None:
        """Say goodbye (a close frame, not waiting for the answer) and release."""
        if self.closed:
            return
        if self.conn.state is ConnectionState.OPEN:
            try:
                self.sock.settimeout(1.0)
                self.sock.sendall(self.conn.send(CloseConnection(code=code)))
            except (OSError, ValueError, LocalProtocolError):
                pass
        self.abort()

    def abort(self) -> None:
        """End the TCP connection now (mid-response: the backend stops at once)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass
        _close_quietly(self.sock)
