"""gateway.workers
~~~~~~~~~~~~~~~~~~
gunicorn's gthread worker, answering what gunicorn itself refuses in JSON.

Requests gunicorn cannot parse (a header over its field limit, too many
headers, a bad request line, a header name that is not a token, a NUL in a
value) never reach Flask: gunicorn answers them with an HTML page, and a
response header it refuses from the application becomes an HTML 500. Every
client of this gateway expects the OpenAI error shape, so this worker answers
those too as ``{"error": {"message", "type", "param", "code"}}`` with the same
status gunicorn would use.

The log gets one warning line per refused request and no traceback: they are
the client's mistakes (or an attacker's), not the gateway's. Neither the log
nor the answer repeats what the client sent: gunicorn's own messages quote the
offending header line, which may be an ``Authorization`` header.

A malformed chunked body is only found while the application reads it, so
Flask would see gunicorn's parse error as a crash (a 500 and a traceback):
the worker hands the application a ``wsgi.input`` that raises the gateway's
own 400 instead, which every endpoint already renders in its dialect.

Slow clients cost a socket, not a thread (docs/security.md): the worker's
main loop collects each request head itself, without a thread, and hands the
connection to a thread only once the head is complete. A head that takes longer
than ``server.client_timeout`` gets a 408 and the connection is closed; a worker
at its connection limit makes room by dropping the oldest such connection. A
request body must keep arriving (no silence longer than the same timeout) and
average ``server.min_body_rate`` after it, or the request ends with 408. A
chunked body over ``server.max_body_bytes`` is a 413, not a truncated body.

A thread that answered a kept-alive connection waits a moment
(``server.next_request_wait_ms``, 2 ms) for the connection's next request and
serves it itself when its head is all there, instead of handing the connection
back to the main loop and on to a thread again (a pipe write, two ``epoll_ctl``,
a thread wake and two GIL hand-overs per request). It only looks at the bytes:
a head that is not whole by then goes back to the loop, under its timeouts.

Everything else is gunicorn's own gthread worker.
"""
from __future__ import annotations

import json
import select
import selectors
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from gunicorn import util
from gunicorn.http import errors as h
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers import gthread


@dataclass(frozen=True)
class Rejection:
    """How the gateway answers one kind of server-level failure."""

    status: int
    reason: str  # the status line's reason phrase
    code: str
    message: str
    client: bool  # the client's fault: a warning line; otherwise the gateway's (an error)


_HEADER_RULES = ("Header names are HTTP tokens (letters, digits and !#$%&'*+-.^_`|~); values "
                 "hold no control characters (NUL, CR, LF)")

# (exception classes, status, reason, code, message). Order matters: the response
# header errors subclass the request header ones. {fields}, {field_size} and
# {line} are the server's limits.
_TABLE: tuple = (
    ((h.InvalidResponseHeader, h.InvalidResponseHeaderName), 500, "Internal Server Error",
     "internal_error", "The gateway built a response header it cannot send.", False),
    ((h.LimitRequestHeaders,), 431, "Request Header Fields Too Large",
     "request_header_fields_too_large",
     "The request headers are too large: at most {fields} header fields of at most "
     "{field_size} bytes each.", True),
    ((h.LimitRequestLine,), 414, "URI Too Long", "request_line_too_long",
     "The request line (method, path and query) is longer than {line} bytes.", True),
    ((h.InvalidRequestLine, h.InvalidRequestMethod, h.InvalidHTTPVersion), 400, "Bad Request",
     "invalid_request_line",
     "The request line is not valid HTTP/1.1: expected 'METHOD /path HTTP/1.1'.", True),
    ((h.InvalidHeaderName,), 400, "Bad Request", "invalid_header_name",
     f"A request header name is not valid. {_HEADER_RULES}.", True),
    ((h.ObsoleteFolding,), 400, "Bad Request", "invalid_header",
     "A request header is continued on the next line (obsolete line folding).", True),
    ((h.InvalidHeader, h.InvalidSchemeHeaders), 400, "Bad Request", "invalid_header",
     f"A request header is not valid (or Content-Length and Transfer-Encoding disagree). "
     f"{_HEADER_RULES}; lines end in CRLF.", True),
    ((h.InvalidChunkSize, h.ChunkMissingTerminator, h.InvalidChunkExtension), 400,
     "Bad Request", "invalid_chunked_body", "The chunked request body is malformed.", True),
    ((h.UnsupportedTransferCoding,), 501, "Not Implemented", "unsupported_transfer_coding",
     "Unsupported Transfer-Encoding: only 'chunked' is accepted.", True),
    ((h.ExpectationFailed,), 417, "Expectation Failed", "expectation_failed",
     "Unsupported Expect header: only '100-continue' is accepted.", True),
    ((h.InvalidProxyLine, h.InvalidProxyHeader, h.InvalidH2CPreface), 400, "Bad Request",
     "invalid_request", "The connection preface is not valid.", True),
    ((h.ForbiddenProxyRequest, ssl.SSLError), 403, "Forbidden", "forbidden",
     "This connection is not allowed.", True),
    ((h.ConfigurationProblem,), 500, "Internal Server Error", "server_misconfigured",
     "The gateway's server is misconfigured; see its log.", False),
    ((h.ParseException,), 400, "Bad Request", "invalid_request",
     "The request is not valid HTTP/1.1.", True),
)
_SLOW_HEAD = Rejection(408, "Request Timeout", "request_timeout",
                       "The request head did not arrive in time; the connection is closed.", True)
_BIG_HEAD = Rejection(431, "Request Header Fields Too Large", "request_header_fields_too_large",
                      "The request head is too large.", True)
RELAY_KEY = "codex_gateway.relay"  # gateway.relay.ENVIRON_KEY (not imported: see gateway_error)

_INTERNAL = Rejection(500, "Internal Server Error", "internal_error", "Internal gateway error.",
                      False)


def rejection_for(exc: BaseException, fields: int = 100, field_size: int = 8190,
                  line: int = 4094) -> Rejection:
    """The answer to *exc*; limits default to gunicorn's. Unknown exceptions are
    the gateway's own failures (500)."""
    for classes, status, reason, code, message, client in _TABLE:
        if isinstance(exc, classes):
            return Rejection(status, reason, code,
                             message.format(fields=fields, field_size=field_size, line=line),
                             client)
    return _INTERNAL


def gateway_error(rejection: Rejection):
    """The rejection as a :class:`gateway.errors.GatewayError`.

    Imported when called, not when this module is: gunicorn's arbiter imports
    this module before forking, and each worker imports ``gateway`` afresh
    (``post_fork``), so only a late import gives the class the app catches."""
    from .errors import GatewayError

    return GatewayError(rejection.status, rejection.message, code=rejection.code)


def render(rejection: Rejection) -> bytes:
    """The whole HTTP/1.1 response: JSON body, connection closed (the stream may
    be anywhere in a broken request, so it cannot be reused)."""
    body = json.dumps(gateway_error(rejection).body()).encode()
    head = (f"HTTP/1.1 {rejection.status} {rejection.reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def server_config(app):
    """The ``server`` config of the gateway *app*, or None (another WSGI app)."""
    state = getattr(app, "extensions", {}).get("gateway")
    return None if state is None else state.config.server


@dataclass(frozen=True)
class BodyLimits:
    """How a request body must arrive (``server.*``; None/0: no bound)."""

    max_bytes: int | None = None  # chunked bodies (Flask refuses a large Content-Length itself)
    idle: float | None = None     # the longest silence while a body is read, seconds
    min_rate: int = 0             # bytes per second averaged once *idle* seconds have passed

    @classmethod
    def of(cls, app) -> "BodyLimits":
        """The limits of the gateway *app* (its ``server`` config), or none."""
        server = server_config(app)
        if server is None:
            return cls()
        return cls(server.max_body_bytes, server.client_timeout, server.min_body_rate)


class GuardedInput:
    """``wsgi.input`` whose parse errors (a malformed chunked body or trailer)
    are the gateway's 400, not an exception the application cannot place; a
    body that stalls or trickles is a 408 and a chunked body over the limit a
    413 (:class:`BodyLimits`). gunicorn still closes the connection after a
    failed body."""

    __slots__ = ("_body", "_max_bytes", "_seen")

    def __init__(self, body, max_bytes: int | None = None):
        self._body = body
        self._max_bytes = max_bytes  # set for a chunked body only
        self._seen = 0

    def read(self, size=None):
        return self._count(self._guard(self._body.read, size))

    def readline(self, size=None):
        return self._count(self._guard(self._body.readline, size))

    def readlines(self, hint=None):
        lines = self._guard(self._body.readlines, hint)
        self._count(b"".join(lines))
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    @staticmethod
    def _guard(method, arg):
        try:
            return method(arg)
        except h.ParseException as exc:
            raise gateway_error(rejection_for(exc)) from None
        except TimeoutError:  # PacedSocket: a silent or trickling body
            raise _body_too_slow() from None

    def _count(self, data):
        self._seen += len(data)
        limit = self._max_bytes
        if limit is not None and self._seen >= limit:
            # the reader stops at the limit: one more byte says the body is longer
            if self._seen > limit or self._guard(self._body.read, 1):
                raise _body_too_large(limit)
        return data


class PacedSocket:
    """The socket gunicorn's parser reads a request body from, with a pace: no
    silence longer than *idle* seconds, and after *idle* seconds at least *rate*
    bytes per second on average, else ``TimeoutError`` (the request's 408).
    Every other use of the socket goes to the socket itself."""

    __slots__ = ("sock", "idle", "rate", "started", "seen")

    def __init__(self, sock, idle: float, rate: int):
        self.sock, self.idle, self.rate = sock, idle, rate
        self.arm()

    def arm(self) -> None:
        """A new request: the clock starts at its first read."""
        self.started: float | None = None
        self.seen = 0

    def recv(self, size: int) -> bytes:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        wait = self.idle
        if self.rate:
            wait = min(wait, self.started + self.idle + self.seen / self.rate - now)
        if wait <= 0:
            raise TimeoutError("request body too slow")
        previous = self.sock.gettimeout()
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(size)
        finally:
            self.sock.settimeout(previous)
        self.seen += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self.sock, name)


def _body_too_slow():
    from .errors import GatewayError

    return GatewayError(408, "The request body arrived too slowly (server.client_timeout, "
                        "server.min_body_rate).", code="request_timeout")


def _body_too_large(limit: int):
    from .errors import GatewayError

    return GatewayError(413, "The request body is larger than the gateway's limit "
                        f"({limit} bytes; server.max_body_bytes).", code="request_too_large")


def guard_input(app, relay_ok: bool = False, max_bytes: int | None = None):
    """WSGI middleware: the application reads the body through :class:`GuardedInput`
    (a chunked one bounded by *max_bytes*); *relay_ok*: the client socket is plain
    HTTP that :mod:`gateway.relay` may write to (said in the environ)."""
    def guarded(environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        environ["wsgi.input"] = GuardedInput(environ["wsgi.input"],
                                             max_bytes if chunked else None)
        if relay_ok:
            environ[RELAY_KEY] = True
        return app(environ, start_response)
    return guarded


def head_complete(data: bytes) -> bool:
    """Whether *data* holds a whole request head (a bare-LF head counts, so the
    parser gets to refuse it)."""
    return b"\n\r\n" in data or b"\n\n" in data


EVICTABLE_AFTER = 1.0  # seconds a head may take before a full worker drops it for room
HEAD_LIMIT = 65536  # a head that has not ended by now is refused (nginx sends at most 32 KiB)
NEXT_ON_THREAD = 100  # requests one thread serves in a row on a connection, at most


class ThreadWorker(gthread.ThreadWorker):
    """gthread, with JSON answers and quiet logs for what gunicorn refuses, and
    request heads collected by the main loop (a slow client holds no thread)."""

    body_limits = BodyLimits()
    next_request_wait = 0.0  # seconds (server.next_request_wait_ms)

    def init_process(self):
        self.heads: dict = {}  # connection -> when its head began to arrive, oldest first
        self._notified = 0.0
        super().init_process()

    def notify(self):
        """The heartbeat the arbiter reads (``timeout``: 60 s), written at most once a
        second: gthread's loop wrote it at every turn, a system call per request or two."""
        now = time.monotonic()
        if now - self._notified >= 1.0:
            self._notified = now
            super().notify()

    def load_wsgi(self):
        super().load_wsgi()
        cfg = self.cfg
        plain = not cfg.is_ssl and getattr(cfg, "protocol", "http") == "http"
        limits = BodyLimits.of(self.wsgi)
        self.body_limits = limits
        server = server_config(self.wsgi)
        if server is not None:
            self.next_request_wait = server.next_request_wait_ms / 1000
        # TLS in gunicorn and HTTP/2 prior knowledge read the connection's first bytes
        # themselves: those connections keep gthread's own wait.
        self.reads_heads = plain and getattr(cfg, "http2_cleartext", None) not in (
            "prior-knowledge", "both")
        self.wsgi = guard_input(self.wsgi, relay_ok=plain, max_bytes=limits.max_bytes)

    # -- request heads, collected without a thread ------------------------------------

    def enqueue_req(self, conn):
        """A connection goes to a thread once its request head is all here."""
        if not getattr(self, "reads_heads", False):
            return super().enqueue_req(conn)
        if conn.parser is not None:  # pipelined bytes read ahead by the last request
            conn.head = getattr(conn, "head", b"") + conn.parser.unreader.take_buffered()
        if head_complete(getattr(conn, "head", b"")):
            return self._dispatch(conn)
        if conn not in self.heads:
            self.heads[conn] = time.monotonic()
            conn.sock.setblocking(False)
            # What already arrived is read now: a kept-alive client's next request is
            # usually all here when the loop sees its socket readable, and waiting for
            # the loop to say so again cost four system calls and a loop turn per request.
            self._read_head(conn, None)
            if conn in self.heads:  # more to come (or nothing yet): the loop waits for it
                self.poller.register(conn.sock, selectors.EVENT_READ,
                                     partial(self._read_head, conn))

    def _read_head(self, conn, _sock):
        try:
            data = conn.sock.recv(HEAD_LIMIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left
            self._drop_head(conn)
            return
        conn.head = getattr(conn, "head", b"") + data
        if head_complete(conn.head):
            self._unwatch(conn)
            self._dispatch(conn)
        elif len(conn.head) > HEAD_LIMIT:
            self._drop_head(conn, _BIG_HEAD)

    def _dispatch(self, conn):
        conn.data_ready = True  # gthread's own wait for a first byte is over
        super().enqueue_req(conn)

    def _unwatch(self, conn) -> bool:
        if self.heads.pop(conn, None) is None:
            return False
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        return True

    def _drop_head(self, conn, rejection: Rejection | None = None):
        """Close a connection whose head is still arriving (with *rejection*'s answer)."""
        if not self._unwatch(conn):
            return
        if rejection is not None:
            self.log.info("dropped a client ip=%s: %d %s", (conn.client or ("",))[0],
                          rejection.status, rejection.code)
            try:
                conn.sock.send(render(rejection))
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        super().murder_pending()
        oldest = time.monotonic() - (self.body_limits.idle or 10.0)
        for conn, since in list(self.heads.items()):  # a stopping worker too: a request
            if since > oldest:                           # may be on its way (gthread's linger)
                break
            self._drop_head(conn, _SLOW_HEAD)
        if not self._accepting:  # full: the run loop re-enables accepting once there is room
            self._make_room()

    def set_accept_enabled(self, enabled):
        """At its connection limit the worker makes room by dropping the oldest
        connections still sending their head after ``EVICTABLE_AFTER`` seconds
        (slow ones: a fresh connection gets its chance), instead of refusing new
        clients; without such a connection it stops accepting, as gthread does."""
        if not enabled and self._make_room():
            return
        super().set_accept_enabled(enabled)

    def _make_room(self) -> bool:
        """Drop slow heads, oldest first, until the worker may accept again."""
        if not self.alive or not getattr(self, "heads", None):
            return False
        slow = time.monotonic() - EVICTABLE_AFTER
        while self.heads and self.nr_conns >= self.worker_connections:
            conn, since = next(iter(self.heads.items()))
            if since > slow:
                break
            self._drop_head(conn, _SLOW_HEAD)
        return self.nr_conns < self.worker_connections

    def handle(self, conn):
        """Serve the request whose head the loop collected, then the ones that follow
        on the connection at once (:meth:`_next_head_here`), on this thread: handing a
        kept-alive connection back to the loop and on to a thread again is a pipe
        write, two ``epoll_ctl``, a thread wake and two GIL hand-overs per request."""
        result = self._serve(conn)
        for _ in range(NEXT_ON_THREAD):
            if result is not True or not self.alive or not self._next_head_here(conn):
                break
            self._pace(conn)
            result = super().handle(conn)
        return result

    def _serve(self, conn):
        head = getattr(conn, "head", b"")
        if head:
            conn.head = b""
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(head)
            self._pace(conn)
        return super().handle(conn)

    def _pace(self, conn) -> None:
        """The body-pace clock of a new request on *conn* (:class:`PacedSocket`)."""
        limits = self.body_limits
        unreader = conn.parser.unreader
        if limits.idle and hasattr(unreader, "sock"):
            if not isinstance(unreader.sock, PacedSocket):
                unreader.sock = PacedSocket(unreader.sock, limits.idle, limits.min_rate)
            unreader.sock.arm()

    def _next_head_here(self, conn) -> bool:
        """Whether the connection's next request head arrives whole within
        ``next_request_wait`` seconds: looked at, not read, so that otherwise the loop
        takes the connection back as gthread does and reads the head itself, under its
        own timeouts (a slow head never holds this thread)."""
        wait = self.next_request_wait
        if not wait or not getattr(self, "reads_heads", False) or conn.parser is None \
                or conn.parser.unreader.buf.getvalue():
            return False
        sock = conn.sock
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            if not poller.poll(wait * 1000):
                return False
            data = sock.recv(HEAD_LIMIT, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            return False
        return bool(data) and head_complete(data)

    def handle_error(self, req, client, addr, exc):
        started = datetime.now()
        addr = addr or ("", -1)  # unix socket
        cfg = self.cfg
        rejection = rejection_for(exc, cfg.limit_request_fields, cfg.limit_request_field_size,
                                  cfg.limit_request_line)
        if rejection.client:
            self.log.warning("refused request from ip=%s: %d %s (%s)", addr[0],
                             rejection.status, rejection.code, type(exc).__name__)
        elif rejection is _INTERNAL:
            self.log.exception("error handling request")  # a real bug: keep its traceback
        else:  # the gateway's fault but a known one: name it (no client data in it)
            self.log.error("%s: %s", rejection.code, exc)
        if req is None and isinstance(exc, (h.InvalidHeader, h.InvalidHeaderName)):
            req = getattr(exc, "req", None)  # for the access log
        if req is not None:
            try:
                environ = default_environ(req, client, cfg)
                environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
                resp = Response(req, client, cfg)
                resp.status = f"{rejection.status} {rejection.reason}"
                resp.response_length = 0
                self.log.access(resp, req, environ, datetime.now() - started)
            except Exception:  # the access line is a courtesy; the answer is not
                self.log.debug("could not log the refused request")
        try:
            util.write_nonblock(client, render(rejection))
        except Exception:
            self.log.debug("could not send the error answer")
