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

Everything else is gunicorn's own gthread worker: the subclass overrides
only the error answers and ``wsgi.input``.
"""
from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import datetime

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


class GuardedInput:
    """``wsgi.input`` whose parse errors (a malformed chunked body or trailer)
    are the gateway's 400, not an exception the application cannot place.
    gunicorn still closes the connection after a failed body."""

    __slots__ = ("_body",)

    def __init__(self, body):
        self._body = body

    def read(self, size=None):
        return self._guard(self._body.read, size)

    def readline(self, size=None):
        return self._guard(self._body.readline, size)

    def readlines(self, hint=None):
        return self._guard(self._body.readlines, hint)

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


def guard_input(app, relay_ok: bool = False):
    """WSGI middleware: the application reads the body through :class:`GuardedInput`;
    *relay_ok*: the client socket is plain HTTP that :mod:`gateway.relay` may
    write to (said in the environ)."""
    def guarded(environ, start_response):
        environ["wsgi.input"] = GuardedInput(environ["wsgi.input"])
        if relay_ok:
            environ[RELAY_KEY] = True
        return app(environ, start_response)
    return guarded


class ThreadWorker(gthread.ThreadWorker):
    """gthread, with JSON answers and quiet logs for what gunicorn refuses."""

    def load_wsgi(self):
        super().load_wsgi()
        cfg = self.cfg
        plain = not cfg.is_ssl and getattr(cfg, "protocol", "http") == "http"
        self.wsgi = guard_input(self.wsgi, relay_ok=plain)

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
