"""The thread-free upstream reader: waits on the socket, never on data it already holds."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest

from gateway.relay import EOF
from gateway.upstream.http import client as transport

FRAME = b"event: x\ndata: {}\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    peers: list = []
    drop_second = False  # close a kept-alive connection when its second request comes

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if _Handler.drop_second and self.client_address in _Handler.peers:
            self.close_connection = True  # the upstream's idle close, met just in time
            self.connection.shutdown(2)
            return
        _Handler.peers.append(self.client_address)
        self.send_response(200)
        if self.path == "/length":
            self.send_header("Content-Length", str(3 * len(FRAME)))
            self.end_headers()
            self.wfile.write(FRAME * 3)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for _ in range(3):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(FRAME), FRAME))
                self.wfile.flush()
                time.sleep(0.3)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the reader went away: that test's point

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


def drain(reader, timeout):
    got = []
    for _ in range(100):
        item = reader.next_bytes(timeout)
        got.append(item)
        if item is EOF:
            return got
    raise AssertionError("no EOF")


def test_a_body_with_a_length_ends_without_waiting(server):
    reader = transport.Reader(transport.post(server + "/length", {}, {}, (3, 3)))
    started = time.monotonic()
    got = drain(reader, 5)
    assert b"".join(c for c in got if isinstance(c, bytes)) == FRAME * 3
    assert time.monotonic() - started < 2  # the end is known: no wait for the timeout


def test_a_chunked_body_ticks_while_silent_and_keeps_every_byte(server):
    reader = transport.Reader(transport.post(server + "/chunked", {}, {}, (3, 3)))
    got = drain(reader, 0.1)
    assert None in got  # nothing buffered between chunks: the wait timed out
    assert b"".join(c for c in got if isinstance(c, bytes)) == FRAME * 3
    assert not [t for t in threading.enumerate() if "upstream" in t.name]  # no reader thread


def test_a_body_read_to_its_end_gives_the_connection_back(server):
    """The next request skips the TCP (and, upstream, TLS) handshake."""
    _Handler.peers.clear()
    for path in ("/length", "/chunked", "/length"):
        reader = transport.Reader(transport.post(server + path, {}, {}, (3, 3)))
        drain(reader, 5)
        reader.close()
    assert len(_Handler.peers) == 3 and len(set(_Handler.peers)) == 1


def test_a_body_left_unread_closes_its_connection(server):
    _Handler.peers.clear()
    reader = transport.Reader(transport.post(server + "/chunked", {}, {}, (3, 3)))
    assert reader.next(5)  # the first event, then the client goes away
    reader.close()
    drain(transport.Reader(transport.post(server + "/length", {}, {}, (3, 3))), 5)
    assert len(set(_Handler.peers)) == 2


def test_a_pooled_connection_closed_by_the_upstream_is_retried_once_on_a_new_one(server):
    _Handler.peers.clear()
    _Handler.drop_second = True
    try:
        for _ in range(3):
            reader = transport.Reader(transport.post(server + "/length", {}, {}, (3, 3)))
            assert b"".join(c for c in drain(reader, 5) if isinstance(c, bytes)) == FRAME * 3
            reader.close()
    finally:
        _Handler.drop_second = False
    assert len(set(_Handler.peers)) == 3  # each reuse met a closed connection: a new one


# -- over TLS, as the real backend is reached -------------------------------------------
# Two whole TLS records (16 KB) and a third of ~12 KB: more than one 8 KB read, so its
# tail waits decrypted inside TLS, where poll cannot see it.
BIG = b"event: big\ndata: " + b"y" * (2 * 16384 + 12000) + b"\n\n"


class _TLSHandler(_Handler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        _TLSHandler.peers.append(self.client_address)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for frame in (FRAME, BIG, FRAME):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
            time.sleep(0.3)
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    import ssl

    from tests.support import self_signed_cert
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _TLSHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_port}", str(cert)
    srv.shutdown()


def test_over_tls_every_byte_arrives_silence_ticks_and_the_connection_is_reused(tls_server):
    """The reader's TLS path: decrypted bytes that poll cannot see (pending), records
    split over reads, silence between chunks, the connection back to the pool."""
    import requests

    url, cert = tls_server
    _TLSHandler.peers = []
    with requests.Session() as session:
        for _ in range(2):
            resp = session.post(url, json={}, stream=True, verify=cert, timeout=(3, 3))
            reader = transport.Reader(resp)
            got = drain(reader, 0.1)
            reader.close()
            assert b"".join(c for c in got if isinstance(c, bytes)) == FRAME + BIG + FRAME
            assert None in got  # the waits between chunks timed out: keep-alive ticks
            # BIG came whole before any tick: decrypted bytes left in TLS were read at
            # once, not after the next packet woke poll 0.3 s later.
            seen, start = 0, None
            for i, item in enumerate(got):
                if isinstance(item, bytes):
                    seen += len(item)
                    if start is None and seen > len(FRAME):
                        start = i
                    if seen >= len(FRAME) + len(BIG):
                        assert None not in got[start:i], got[start:i]
                        break
    assert len(_TLSHandler.peers) == 2 and len(set(_TLSHandler.peers)) == 1


def test_the_reader_gives_parsed_events(server):
    reader = transport.Reader(transport.post(server + "/chunked", {}, {}, (3, 3)))
    events = []
    while (got := reader.next(5)) is not EOF:
        events += got or []
    assert [(e.type, e.raw) for e in events] == [("x", FRAME)] * 3


def test_the_adapter_finds_a_urls_pool_once_and_again_after_it_closed():
    import requests as _requests
    from gateway.upstream.http.client import _Adapter
    adapter = _Adapter(pool_connections=1, pool_maxsize=2, max_retries=0)
    url = "https://backend.example/backend-api/codex/responses"
    request = _requests.Request("POST", url).prepare()
    pool = adapter.get_connection_with_tls_context(request, True)
    adapter.cert_verify(pool, url, True, None)
    assert adapter.get_connection_with_tls_context(request, True) is pool
    assert adapter.request_url(request, {}) == "/backend-api/codex/responses"
    assert pool.cert_reqs == "CERT_REQUIRED" and pool.ca_certs  # checks kept
    adapter.get_connection_with_tls_context(request, False)  # other checks: never cached
    assert adapter._found[url][0] is pool
    adapter.close()
    assert adapter._found == {}
    again = adapter.get_connection_with_tls_context(request, True)
    assert again is not pool and again.pool is not None


# -- the bytes on the wire: the savings below the adapter change none -------------------
class _Capture:
    """A raw socket server keeping each request's bytes, answering each alike (the
    bench's: requests on the wire are its subject too)."""

    ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nSet-Cookie: a=b; path=/\r\n"
              b"X-Dup: 1\r\nx-other: 2\r\nx-dup: 3\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(FRAME), FRAME))

    def __init__(self):
        import socket

        from bench.upstream_http import serve_forever
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v/responses"
        threading.Thread(target=serve_forever, args=(self.listener, self.ANSWER, self.requests),
                         daemon=True).start()


@pytest.fixture()
def capture():
    srv = _Capture()
    yield srv
    srv.listener.close()


def _post_and_read(url, headers):
    reader = transport.Reader(transport.post(url, {"model": "m", "input": "é"}, headers, (3, 3)))
    got = drain(reader, 5)
    reader.close()
    return b"".join(c for c in got if isinstance(c, bytes))


HEADERS = {"Authorization": "Bearer t", "session_id": "s-1", "Accept": "text/event-stream",
           "Content-Type": "application/json"}


def _stock():
    """Every saving below the adapter taken back (bench.upstream_http's switches)."""
    import contextlib

    from bench.upstream_http import _savings
    stack = contextlib.ExitStack()
    for _, undo in _savings():
        stack.enter_context(undo())
    return stack


def test_the_request_bytes_are_the_stock_clients_in_one_send(capture):
    import http.client
    sends = []
    real_send = http.client.HTTPConnection.send
    with mock.patch.object(http.client.HTTPConnection, "send",
                           lambda self, data: sends.append(len(data)) or real_send(self, data)):
        assert _post_and_read(capture.url, HEADERS) == FRAME
        assert len(sends) == 1  # head and body in one segment
        with _stock():
            assert _post_and_read(capture.url, HEADERS) == FRAME
        assert len(sends) == 3  # the stock client: head, then body
    fast, stock = capture.requests
    assert fast == stock
    assert fast.startswith(b"POST /v/responses HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer t\r\n" in fast and fast.endswith(b'"input":"\xc3\xa9"}')


def test_the_answer_is_requests_own_without_its_cookies(capture):
    def answer():
        resp = transport.post(capture.url, {}, HEADERS, (3, 3))
        state = {k: v for k, v in vars(resp).items() if k not in ("raw", "request", "cookies")}
        state["headers"] = list(resp.headers.items())
        state["content"] = resp.content
        return resp, state

    fast, fast_state = answer()
    with _stock():
        stock, stock_state = answer()
    assert fast_state == stock_state
    assert fast_state["headers"][1:4] == [("Set-Cookie", "a=b; path=/"), ("X-Dup", "1, 3"),
                                          ("x-other", "2")]
    assert type(fast) is type(stock) and fast.raw.__class__ is stock.raw.__class__
    assert dict(stock.cookies) == {"a": "b"} and dict(fast.cookies) == {}  # kept by nobody


@pytest.mark.parametrize("header", [("X-A", "v\r\nX-Evil: 1"), ("X-A", " leading"),
                                    ("X-A", "v\nX: 1"), ("X-A\r\nX-Evil", "1"), ("X-A", 7)])
def test_header_values_are_still_checked_before_anything_is_sent(capture, header):
    import requests
    with pytest.raises(requests.exceptions.InvalidHeader):
        transport.post(capture.url, {}, dict([header]), (3, 3))
    assert capture.requests == []


def test_the_request_is_what_requests_prepares():
    import requests
    url = "http://Example.COM:8080/v/responses?x=1"
    built = transport._request(url, {"A": "1", "content-length": "9", "B": b"2"}, b"{}")
    stock = requests.Request("POST", url).prepare()
    stock.prepare_headers({"A": "1", "content-length": "9", "B": b"2"})
    stock.prepare_body(b"{}", None)
    assert (built.method, built.url, list(built.headers.items()), built.body) == \
        (stock.method, stock.url, list(stock.headers.items()), stock.body)


def test_over_tls_the_wire_classes_carry_it_and_certificates_are_still_checked(tls_server):
    from gateway.errors import UpstreamUnreachable
    from gateway.upstream.http import wire
    url, cert = tls_server
    with pytest.raises(UpstreamUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
        transport.post(url, {}, HEADERS, (3, 3))  # self-signed: refused, as before
    adapter = transport.session().get_adapter(url)
    resp = adapter.send(transport._request(url, HEADERS, b"{}"), stream=True, timeout=(3, 3),
                        verify=cert)
    assert isinstance(resp.raw._connection, wire.TLSConnection)
    assert isinstance(resp.raw._original_response.msg, wire.PlainMessage)
    reader = transport.Reader(resp)
    got = drain(reader, 5)
    reader.close()
    assert b"".join(c for c in got if isinstance(c, bytes)) == FRAME + BIG + FRAME
