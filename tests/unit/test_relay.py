"""The worker's relay: one loop carries open answers from upstream sockets to clients.

Real sockets on both sides: a scripted HTTP/1.1 upstream on 127.0.0.1 (each
test says what it sends and when), the gateway's own reader and stream over
it, and a socketpair standing in for the client's connection (the test reads
the far end). The test plays gunicorn: it writes the first frames itself, then
the body's second ``next`` hands the stream to the relay and blocks.
"""
from __future__ import annotations

import queue
import socket
import threading
import time

import pytest

from gateway import relay
from gateway.dialects.responses import events
from gateway.record import Outcome, RequestRecord
from gateway.sse import encode
from gateway.stream import UpstreamStream
from gateway.upstream.http import client as transport
from tests.support import recv_until


def frame(kind, **data):
    return encode(dict(data, type=kind), kind)


CREATED = frame("response.created")
COMPLETED = frame("response.completed", response={"usage": {"input_tokens": 3,
                                                            "output_tokens": 2}})
END = COMPLETED[-24:]  # the last bytes of an answer the client reads


def delta(i):
    return frame("response.output_text.delta", delta=f"tok{i} ")


class Upstream:
    """One chunked answer per connection, written as the test says: bytes (one
    chunk each), ``"end"`` (the last chunk) or ``"close"`` (cut the connection)."""

    def __init__(self, tls=None):
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.tls = tls  # a server-side SSLContext, or None
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.srv.getsockname()[1]}"
        self.script: queue.Queue = queue.Queue()
        self.closed = threading.Event()  # the gateway closed its side
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        data = recv_until(conn, b"\r\n\r\n", 65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int([h.split(b":")[1] for h in head.split(b"\r\n")
                      if h.lower().startswith(b"content-length")][0])
        while len(body) < length:
            body += conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while True:
                item = self.script.get()
                if item == "end":
                    conn.sendall(b"0\r\n\r\n")
                    break
                if item == "close":
                    break
                if isinstance(item, float):
                    time.sleep(item)
                    continue
                conn.sendall(b"%x\r\n%s\r\n" % (len(item), item))
            conn.settimeout(5)
            if conn.recv(1) == b"":  # closed by the gateway (kept alive: a timeout)
                self.closed.set()
        except TimeoutError:
            pass
        except OSError:
            self.closed.set()
        finally:
            conn.close()

    def send(self, *items):
        for item in items:
            self.script.put(item)


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.srv.close()


@pytest.fixture(scope="module")
def loop():
    return relay.Relay()


class Client:
    """The client's connection: the gateway writes to ``gateway``, the test reads ``peer``."""

    def __init__(self):
        self.gateway, self.peer = socket.socketpair()
        self.got = b""

    def read_until(self, needle: bytes, timeout: float = 5.0) -> bytes:
        self.peer.settimeout(timeout)
        while needle not in self.got:
            data = self.peer.recv(65536)
            if not data:
                break
            self.got += data
        return self.got


def open_stream(upstream, *, keepalive=5.0, read_timeout=30.0, settle=0.0, verify=None):
    if verify:
        import requests
        resp = requests.post(upstream.url + "/x", json={}, stream=True, verify=verify,
                             timeout=(3, 3))
    else:
        resp = transport.post(upstream.url + "/x", {}, {}, (3, 3))
    time.sleep(settle)  # let what the upstream already sent arrive before the reader starts
    record = RequestRecord("responses")
    stream = UpstreamStream(transport.Reader(resp), record, read_timeout=read_timeout,
                            keepalive=keepalive,
                            timed=True, headers={})
    return stream, record


def relayed(loop, upstream, client, **kw):
    """Play gunicorn: the first frames written by the test (not chunk-framed, for
    readability), then the relay; returns the thread waiting in ``next`` and a
    list that receives how the body ended."""
    stream, record = open_stream(upstream, **kw)
    assert stream.prime(2.0) is None
    body = relay.Body(events.frames(stream), stream, loop, client.gateway)
    client.gateway.sendall(next(body))
    ended: list = []

    def rest():
        try:
            for item in body:
                ended.append(("thread", item))  # the relay declined: gunicorn would write it
            ended.append("done")
        except BrokenPipeError:
            ended.append("broken_pipe")
        finally:
            body.close()

    thread = threading.Thread(target=rest, daemon=True)
    thread.start()
    return thread, ended, record


def chunks(data: bytes) -> bytes:
    """The payload of a chunked body (the relay frames what it writes)."""
    out, rest = b"", data
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        out, rest = out + rest[:n], rest[n + 2:]
    return out


def test_events_go_through_the_loop_in_order_and_the_connection_returns_to_the_pool(
        loop, upstream):
    client = Client()
    upstream.send(CREATED, delta(0))
    thread, ended, record = relayed(loop, upstream, client)
    for i in range(1, 50):
        upstream.send(delta(i))
    upstream.send(COMPLETED, "end")
    thread.join(5)
    assert ended == ["done"]
    client.read_until(END)
    got = CREATED + delta(0)
    assert client.got.startswith(got)
    assert chunks(client.got[len(got):]) == b"".join(delta(i) for i in range(1, 50)) + COMPLETED
    assert record.outcome is Outcome.COMPLETED and record.output_tokens == 2
    assert loop.flows == 0
    assert not upstream.closed.wait(0.3)  # kept: the body ended as framed


def test_a_silent_upstream_gets_keepalive_ticks_then_the_rest(loop, upstream):
    client = Client()
    upstream.send(CREATED, delta(0))
    thread, ended, _ = relayed(loop, upstream, client, keepalive=0.1)
    upstream.send(0.45, delta(1), COMPLETED, "end")
    thread.join(5)
    assert ended == ["done"]
    body = chunks(client.read_until(END)[len(CREATED + delta(0)):])
    assert body.count(b": keep-alive\n\n") >= 3
    assert body.endswith(delta(1) + COMPLETED)


def test_an_upstream_silent_for_the_read_timeout_ends_with_an_error_event(loop, upstream):
    client = Client()
    upstream.send(CREATED, delta(0))
    started = time.monotonic()
    thread, ended, record = relayed(loop, upstream, client, keepalive=0.1, read_timeout=0.4)
    thread.join(5)
    assert ended == ["done"] and time.monotonic() - started < 2
    assert b"upstream_timeout" in chunks(client.read_until(b"upstream_timeout")[
        len(CREATED + delta(0)):])
    assert record.outcome is Outcome.UPSTREAM_ERROR
    upstream.send("close")


def test_a_client_that_goes_away_closes_the_upstream_at_once(loop, upstream):
    client = Client()
    upstream.send(CREATED, delta(0))
    thread, ended, record = relayed(loop, upstream, client)
    upstream.send(delta(1))
    client.read_until(b"tok1")
    client.peer.close()
    started = time.monotonic()
    thread.join(5)
    assert ended == ["broken_pipe"]
    assert time.monotonic() - started < 1.0  # seen by epoll, not at the next write
    assert record.outcome is Outcome.CLIENT_CLOSED
    upstream.send(delta(2), "end")
    assert upstream.closed.wait(5)
    assert loop.flows == 0


def test_a_slow_client_holds_the_upstream_back_and_gets_every_byte(loop, upstream):
    client = Client()
    client.gateway.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    upstream.send(CREATED, delta(0))
    thread, ended, _ = relayed(loop, upstream, client)
    big = [frame("response.output_text.delta", delta=f"{i:06d}" + "x" * 4000)
           for i in range(1000)]  # ~4 MB, far more than the sockets hold
    upstream.send(*big, COMPLETED, "end")
    time.sleep(0.5)  # the client reads nothing meanwhile
    client.read_until(END, timeout=20)
    thread.join(10)
    assert ended == ["done"]
    assert chunks(client.got[len(CREATED + delta(0)):]) == b"".join(big) + COMPLETED


def test_a_client_that_reads_nothing_for_the_read_timeout_is_dropped(loop, upstream):
    client = Client()
    client.gateway.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    upstream.send(CREATED, delta(0))
    thread, ended, record = relayed(loop, upstream, client, keepalive=0.1, read_timeout=0.5)
    upstream.send(*[frame("response.output_text.delta", delta="y" * 8000)] * 200)
    thread.join(5)
    assert ended == ["broken_pipe"]
    assert record.outcome is Outcome.CLIENT_CLOSED
    upstream.send("close")


def test_a_renderer_failing_inside_the_loop_cuts_that_answer_only(loop, upstream, caplog):
    client = Client()
    upstream.send(CREATED, delta(0))
    stream, record = open_stream(upstream)
    assert stream.prime(2.0) is None

    def fails_later(stream):
        try:
            for batch in stream.batches():
                if batch is relay.WAITING:
                    yield batch
                elif any(b"tok1" in e.raw for e in batch):
                    raise RuntimeError("a renderer bug")
                else:
                    yield b"".join(e.raw for e in batch)
        finally:
            stream.close()

    body = relay.Body(fails_later(stream), stream, loop, client.gateway)
    client.gateway.sendall(next(body))
    caplog.set_level("ERROR", logger="gateway.relay")
    upstream.send(delta(1))
    with pytest.raises(BrokenPipeError):
        next(body)
    relay_records = [r for r in caplog.records if r.name == "gateway.relay"]  # other threads log too
    assert [r.getMessage() for r in relay_records] == ["relay: a stream's frames failed"]
    assert loop.flows == 0
    upstream.send("close")
    # The script is one queue for every connection: the first one takes its "close"
    # before the second connection exists, or the second may take it.
    assert upstream.closed.wait(5)
    other = Client()  # the loop goes on serving
    upstream.send(CREATED, delta(0))
    thread, ended, _ = relayed(loop, upstream, other)
    upstream.send(delta(1), COMPLETED, "end")
    thread.join(5)
    assert ended == ["done"] and other.read_until(END).endswith(END + b"\r\n")


def test_an_answer_that_ended_in_its_first_read_is_not_relayed(loop, upstream):
    client = Client()
    upstream.send(CREATED + delta(0) + COMPLETED, "end")
    stream, record = open_stream(upstream, settle=0.2)  # the whole body, last chunk too
    assert stream.prime(2.0) is None
    body = relay.Body(events.frames(stream), stream, loop, client.gateway)
    items = list(body)
    assert b"".join(items) == CREATED + delta(0) + COMPLETED
    assert record.outcome is Outcome.COMPLETED


def test_the_worker_marks_relayable_requests_with_the_relay_s_key():
    from gateway import workers
    assert workers.RELAY_KEY == relay.ENVIRON_KEY


def test_over_tls_a_record_larger_than_a_read_arrives_whole_at_once(tmp_path, loop):
    """Decrypted bytes TLS holds past one read are invisible to epoll: the relayed
    reader reads on while ``pending()`` says so, or the rest would wait for the
    upstream's next packet (here 1 s later)."""
    import ssl

    from tests.support import self_signed_cert
    cert, key = self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    upstream = Upstream(tls=context)
    try:
        client = Client()
        upstream.send(CREATED, delta(0))
        stream, record = open_stream(upstream, verify=str(cert))
        assert stream.prime(2.0) is None
        body = relay.Body(events.frames(stream), stream, loop, client.gateway)
        client.gateway.sendall(next(body))
        ended = []
        thread = threading.Thread(target=lambda: ended.append(list(body)), daemon=True)
        thread.start()
        # One chunk of 2 full TLS records and a third of 12,000 bytes: the last record
        # is larger than a read, and nothing is left in the kernel once it is taken in.
        size = 2 * 16384 + 12000 - 8  # less the chunk's size line and CRLF
        base = frame("response.output_text.delta", delta="")
        big = frame("response.output_text.delta", delta="z" * (size - len(base) - 6) + "BIGEND")
        assert len(b"%x\r\n%s\r\n" % (len(big), big)) == 2 * 16384 + 12000
        upstream.send(big, 1.0, COMPLETED, "end")
        client.read_until(b"BIGEND", timeout=0.6)  # raises a timeout if the tail waited
        thread.join(5)
        assert ended == [[]]
        assert chunks(client.read_until(END)[len(CREATED + delta(0)):]) == big + COMPLETED
        assert record.outcome is Outcome.COMPLETED
    finally:
        upstream.srv.close()


def test_a_slow_end_of_answer_write_does_not_hold_another_relayed_stream(loop):
    """A record sink (or a cooldown) that hangs — a store unreachable for its link's
    timeout — runs off the loop: another relayed stream keeps flowing meanwhile."""
    up_a, up_b = Upstream(), Upstream()
    a, b = Client(), Client()
    entered, release = threading.Event(), threading.Event()

    def hanging_sink(record):
        entered.set()
        release.wait(30)

    try:
        up_a.send(CREATED, delta(0))
        up_b.send(CREATED, delta(0))
        thread_a, ended_a, record_a = relayed(loop, up_a, a)
        record_a.sinks = (hanging_sink,)
        thread_b, ended_b, _ = relayed(loop, up_b, b)
        up_a.send(COMPLETED, "end")
        assert entered.wait(5)  # A's end is being written, and hangs
        up_b.send(delta(1), COMPLETED, "end")
        assert END in b.read_until(END)  # B still flows through the same loop
        thread_b.join(5)
        assert ended_b == ["done"]
    finally:
        release.set()
        up_a.srv.close()
        up_b.srv.close()
    thread_a.join(5)
    assert ended_a == ["done"]
