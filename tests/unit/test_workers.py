"""The gunicorn worker's answers to what gunicorn refuses: JSON, the right status, quiet logs."""
from __future__ import annotations

import io
import json
import socket
import ssl

import pytest
from gunicorn.config import Config as GunicornConfig
from gunicorn.http import errors as h

from gateway import workers
from gateway.errors import GatewayError


@pytest.mark.parametrize("exc,status,code,client", [
    (h.LimitRequestHeaders("limit request headers fields size"), 431,
     "request_header_fields_too_large", True),
    (h.LimitRequestLine(5000, 4094), 414, "request_line_too_long", True),
    (h.InvalidRequestLine("GARBAGE"), 400, "invalid_request_line", True),
    (h.InvalidRequestMethod("get"), 400, "invalid_request_line", True),
    (h.InvalidHTTPVersion("HTTP/7.0"), 400, "invalid_request_line", True),
    (h.InvalidHeaderName("X-Caf\u00e9"), 400, "invalid_header_name", True),
    (h.InvalidHeader("Authorization: Bearer sk-secret\x00"), 400, "invalid_header", True),
    (h.ObsoleteFolding("X-A"), 400, "invalid_header", True),
    (h.InvalidSchemeHeaders(), 400, "invalid_header", True),
    (h.InvalidChunkSize(b"zz"), 400, "invalid_chunked_body", True),
    (h.ChunkMissingTerminator(b"XX"), 400, "invalid_chunked_body", True),
    (h.InvalidChunkExtension("bad"), 400, "invalid_chunked_body", True),
    (h.UnsupportedTransferCoding("brotli"), 501, "unsupported_transfer_coding", True),
    (h.ExpectationFailed("200-ok"), 417, "expectation_failed", True),
    (h.InvalidProxyLine("PROXY nope"), 400, "invalid_request", True),
    (h.ForbiddenProxyRequest("10.0.0.1"), 403, "forbidden", True),
    (ssl.SSLError(1, "bad handshake"), 403, "forbidden", True),
    (h.ParseException(), 400, "invalid_request", True),
    # The gateway's own faults: a response header gunicorn refuses, a misconfiguration, a bug.
    (h.InvalidResponseHeader("'x-gateway-dropped-params'"), 500, "internal_error", False),
    (h.InvalidResponseHeaderName("'bad name'"), 500, "internal_error", False),
    (h.ConfigurationProblem("forwarded"), 500, "server_misconfigured", False),
    (RuntimeError("boom"), 500, "internal_error", False),
])
def test_rejection_for(exc, status, code, client):
    r = workers.rejection_for(exc)
    assert (r.status, r.code, r.client) == (status, code, client)
    assert r.message and r.reason


def test_messages_name_the_limits_and_never_echo_the_request():
    r = workers.rejection_for(h.LimitRequestHeaders("x"), fields=50, field_size=4096)
    assert "50 header fields" in r.message and "4096 bytes" in r.message
    assert "3000 bytes" in workers.rejection_for(h.LimitRequestLine(1, 2), line=3000).message
    r = workers.rejection_for(h.InvalidHeader("Authorization: Bearer sk-secret\x00"))
    assert "sk-secret" not in r.message


def test_render_is_an_http_response_with_an_openai_error():
    raw = workers.render(workers.rejection_for(h.LimitRequestHeaders("x")))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert "Connection: close" in lines and "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    err = json.loads(body)["error"]
    assert err == {"message": err["message"], "type": "invalid_request_error", "param": None,
                   "code": "request_header_fields_too_large"}
    body500 = workers.render(workers.rejection_for(RuntimeError())).partition(b"\r\n\r\n")[2]
    assert json.loads(body500)["error"]["type"] == "server_error"


class _Body:
    """A gunicorn request body that breaks after its first line."""

    def __init__(self):
        self._lines = [b"first\n"]

    def read(self, size=None):
        raise h.InvalidChunkSize(b"zz")

    def readline(self, size=None):
        if self._lines:
            return self._lines.pop()
        raise h.ChunkMissingTerminator(b"XX")

    def readlines(self, hint=None):
        raise h.InvalidChunkExtension("x")


def test_guarded_input_turns_body_parse_errors_into_a_gateway_400():
    body = workers.GuardedInput(_Body())
    for call in (body.read, body.readlines, lambda: list(body)):
        with pytest.raises(GatewayError) as exc:
            call()
        assert exc.value.status == 400 and exc.value.code == "invalid_chunked_body"
        assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_guarded_input_passes_data_and_other_errors_through():
    body = workers.GuardedInput(io.BytesIO(b"a\nb\n"))
    assert body.readline() == b"a\n" and body.read() == b"b\n" and body.read(5) == b""
    assert list(workers.GuardedInput(io.BytesIO(b"x\ny\n"))) == [b"x\n", b"y\n"]

    class Gone:
        def read(self, size=None):
            raise h.NoMoreData(b"")  # a client that left: not a 400, gunicorn handles it

    with pytest.raises(h.NoMoreData):
        workers.GuardedInput(Gone()).read()


def test_the_middleware_hands_the_app_a_guarded_input():
    seen = {}

    def app(environ, start_response):
        seen["input"] = environ["wsgi.input"]
        return [b"ok"]

    assert workers.guard_input(app)({"wsgi.input": io.BytesIO(b"")}, None) == [b"ok"]
    assert isinstance(seen["input"], workers.GuardedInput)


class _Log:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        if level == "exception":
            return lambda msg, *a: self.lines.append(("exception", msg % a))
        return lambda msg, *a: self.lines.append((level, msg % a))


def _worker() -> workers.ThreadWorker:
    w = object.__new__(workers.ThreadWorker)  # no arbiter, no sockets: only handle_error
    w.cfg, w.log = GunicornConfig(), _Log()
    return w


@pytest.mark.parametrize("exc,status,level", [
    (h.LimitRequestHeaders("limit request headers fields size"), 431, "warning"),
    (h.InvalidHeader("Authorization: Bearer sk-secret-0123\x00"), 400, "warning"),
    (h.InvalidResponseHeader("'x-gateway-dropped-params'"), 500, "error"),
    (RuntimeError("boom"), 500, "exception"),
])
def test_handle_error_writes_json_and_logs_one_line(exc, status, level):
    w = _worker()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.handle_error(None, ours, ("127.0.0.1", 5555), exc)
        ours.shutdown(socket.SHUT_WR)
        raw = theirs.recv(65536)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert json.loads(body)["error"]["code"] == workers.rejection_for(exc).code
    assert [lvl for lvl, _ in w.log.lines] == [level]
    text = w.log.lines[0][1]
    assert "sk-secret" not in text and "sk-secret" not in raw.decode()
    if level == "warning":
        assert text.startswith(f"refused request from ip=127.0.0.1: {status} ")
    if level == "error":
        assert "x-gateway-dropped-params" in text  # the gateway's bug: which header


def test_handle_error_survives_a_client_that_is_gone():
    w = _worker()
    ours, theirs = socket.socketpair()
    theirs.close()
    with ours:
        w.handle_error(None, ours, None, h.InvalidRequestLine("x"))  # no exception
    assert [lvl for lvl, _ in w.log.lines] == ["warning", "debug"]


def test_the_shipped_gunicorn_config_uses_this_worker():
    from gateway import gunicorn_conf

    assert gunicorn_conf.worker_class == "gateway.workers.ThreadWorker"
    cfg = GunicornConfig()
    cfg.set("worker_class", gunicorn_conf.worker_class)
    assert cfg.worker_class is workers.ThreadWorker


def test_a_chunked_body_over_the_limit_is_413_at_the_first_byte_too_many():
    for body, limit in ((b"a" * 10, 9), (b"a" * 10, 10), (b"a" * 10, 11)):
        guarded = workers.GuardedInput(io.BytesIO(body), max_bytes=limit)
        if limit < len(body):
            with pytest.raises(GatewayError) as exc:
                while guarded.read(4):
                    pass
            assert exc.value.status == 413 and exc.value.code == "request_too_large"
        else:
            assert b"".join(iter(lambda: guarded.read(4), b"")) == body


def test_a_paced_socket_times_out_a_silent_or_trickling_body():
    a, b = socket.socketpair()
    with a, b:
        paced = workers.PacedSocket(a, idle=0.2, rate=0)
        b.sendall(b"xy")
        assert paced.recv(10) == b"xy" and a.gettimeout() is None  # the timeout is put back
        with pytest.raises(TimeoutError):
            paced.recv(10)  # silence longer than idle
        slow = workers.PacedSocket(a, idle=0.2, rate=10 ** 9)
        slow.started = slow.started or 0.0  # a body that began long ago and sent nothing
        with pytest.raises(TimeoutError):
            slow.recv(10)
    with pytest.raises(GatewayError) as exc:
        workers.GuardedInput(_Raises(TimeoutError())).read()
    assert exc.value.status == 408


class _Raises:
    def __init__(self, exc):
        self.exc = exc

    def read(self, size=None):
        raise self.exc


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.parser = type("P", (), {"unreader": type("U", (), {"buf": io.BytesIO()})()})()


def test_the_next_head_is_looked_at_never_read():
    """server.next_request_wait_ms: a whole head within the wait is served on the
    thread (and left for the parser); a partial one, nothing, or read-ahead bytes
    the parser holds send the connection back to the loop."""
    w = _worker()
    w.reads_heads, w.next_request_wait = True, 0.05
    a, b = socket.socketpair()
    with a, b:
        conn = _Conn(a)
        assert not w._next_head_here(conn)  # nothing within the wait
        b.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert not w._next_head_here(conn)  # not whole
        b.sendall(b"\r\n")
        assert w._next_head_here(conn)
        assert a.recv(100).endswith(b"\r\n\r\n")  # still there for the parser
        b.sendall(b"GET / HTTP/1.1\r\n\r\n")
        conn.parser.unreader.buf.write(b"GET")  # read ahead by the last request
        assert not w._next_head_here(conn)
        w.next_request_wait = 0
        assert not w._next_head_here(_Conn(a))  # off


def test_a_thread_serves_the_requests_that_follow_until_one_does_not(monkeypatch):
    """handle() goes on with the connection while a whole head is there (up to
    NEXT_ON_THREAD in a row), and stops at a closing answer or a stopping worker."""
    served = []
    answers = []
    monkeypatch.setattr(workers.gthread.ThreadWorker, "handle",
                        lambda self, conn: served.append(conn) or answers.pop(0))
    w = _worker()
    w.body_limits, w.alive = workers.BodyLimits(), True
    conn = _Conn(None)
    heads = []
    monkeypatch.setattr(workers.ThreadWorker, "_next_head_here",
                        lambda self, c: heads.pop(0) if heads else True)

    answers[:], heads[:] = [True, True, True], [True, True, False]
    assert w.handle(conn) is True and len(served) == 3  # two more, then back to the loop
    served.clear()
    answers[:], heads[:] = [True, False], []
    assert w.handle(conn) is False and len(served) == 2  # the second closed the connection
    served.clear()
    answers[:] = [True] * (workers.NEXT_ON_THREAD + 5)
    assert w.handle(conn) is True and len(served) == workers.NEXT_ON_THREAD + 1  # bounded
    served.clear()
    w.alive, answers[:] = False, [True]
    assert w.handle(conn) is True and len(served) == 1  # a stopping worker hands it back
