"""Slow, oversized and careless clients against a directly exposed gunicorn
(docs/security.md).

Real gunicorn with the shipped config (so the gateway's worker), one worker with
four threads, raw sockets: a slow client must cost a socket, never a thread.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from tests.integration.test_hostile_server import AUTH, exchange
from tests.support import auth_headers, gateway_env, readable, register_secret

SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200


@pytest.fixture
def gw(gateway_factory, upstream, tmp_path):
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_SERVER_CLIENT_TIMEOUT="3",
                      CODEX_GATEWAY_SERVER_MAX_BODY_BYTES="4096",
                      CODEX_GATEWAY_SERVER_MIN_BODY_RATE="2000")
    return gateway_factory(env, workers=1, threads=4, name="slow")


def _trickle(socks, stop: threading.Event):
    """One more header byte on every socket about every 0.3 s until *stop*."""
    i = 0
    while not stop.is_set() and i < len(SLOW_HEAD):
        for s in socks:
            try:
                s.sendall(SLOW_HEAD[i:i + 1])
            except OSError:
                pass
        i += 1
        stop.wait(0.3)


def test_300_slow_header_connections_leave_healthz_served(gw):
    """F1: more slow-header connections than threads (and than the worker's
    connection slots) while /healthz keeps answering."""
    socks = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(300)]
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(socks, stop), daemon=True)
    trickler.start()
    try:
        time.sleep(1.5)  # every slow connection has sent part of its head (and is slow)
        for _ in range(5):
            r = requests.get(gw.url + "/healthz", timeout=2)  # a hang fails here
            assert r.status_code == 200
            r = requests.get(gw.url + "/v1/models", headers=auth_headers(), timeout=2)
            assert r.status_code == 200
            time.sleep(0.2)
    finally:
        stop.set()
        trickler.join(5)
        for s in socks:
            s.close()
    assert "Traceback" not in gw.logs()


def test_an_unfinished_head_is_dropped_with_408(gw):
    """A partial head then silence: a 408 and the connection closed, after
    server.client_timeout (3 s here), not after minutes."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as s:
        s.sendall(SLOW_HEAD[:40])
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["error"]["code"] == "request_timeout"


def _one_answer(s: socket.socket) -> bytes:
    """One whole HTTP answer (Content-Length framed) read from *s*."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += s.recv(65536)
    return head


def test_a_kept_alive_connection_s_next_head_never_holds_a_thread(gw):
    """A thread waits a moment (server.next_request_wait_ms) for a kept-alive
    connection's next request and serves it when its head is whole; a head that
    arrives in pieces is read by the worker's loop, and one that stops half-way
    is dropped with 408, while more such connections than threads leave
    /healthz served."""
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=30) for _ in range(8)]
    try:
        for s in socks:
            for _ in range(3):  # back to back (the thread's own loop: tests/unit/test_workers.py)
                s.sendall(get)
                assert _one_answer(s).startswith(b"HTTP/1.1 200")
            s.sendall(get[:10])  # the next head in two pieces
            time.sleep(0.05)
            s.sendall(get[10:])
            assert _one_answer(s).startswith(b"HTTP/1.1 200")
            s.sendall(get[:10])  # and one that stops half-way
        for _ in range(3):  # 8 stalled heads, 4 threads
            assert requests.get(gw.url + "/healthz", timeout=2).status_code == 200
        for s in socks:
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 408"), data[:200]
    finally:
        for s in socks:
            s.close()


def test_a_trickling_body_is_408(gw):
    """A body that arrives slower than server.min_body_rate after the grace time."""
    body = json.dumps({"model": "gpt-5-codex", "input": "x" * 3000}).encode()
    data = b""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as s:
        s.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + AUTH
                  + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 50):  # about 100 bytes/s; the limit is 2000
            if readable(s, 0.5):
                break  # answered
            try:
                s.sendall(body[i:i + 50])
            except OSError:
                break
        try:
            while chunk := s.recv(65536):
                data += chunk
        except OSError:
            pass
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b'"request_timeout"' in data


def _chunked(body: bytes) -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                      for i in range(0, len(body), 1000))
    return (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + AUTH
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            + b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")


@pytest.mark.parametrize("body", [
    json.dumps({"model": "gpt-5-codex", "input": "x" * 5000, "stream": False}).encode(),
    # a valid body at exactly the limit, then more: never served from its prefix
    (lambda head, tail: head + b"a" * (4096 - len(head) - len(tail)) + tail + b"GARBAGE")(
        b'{"model":"gpt-5-codex","stream":false,"input":"', b'"}'),
])
def test_a_chunked_body_over_the_limit_is_413(gw, body):
    status, _, answer = exchange(gw.port, _chunked(body))
    assert status == 413, answer[:200]
    assert json.loads(answer)["error"]["code"] == "request_too_large"


def test_a_chunked_body_at_the_limit_is_served(gw):
    head, tail = b'{"model":"gpt-5-codex","stream":false,"input":"', b'"}'
    body = head + b"a" * (4096 - len(head) - len(tail)) + tail
    status, _, answer = exchange(gw.port, _chunked(body))
    assert status == 200, answer[:200]


def test_secrets_in_a_query_string_never_reach_the_access_log(gw):
    """F11: ?key= (the Gemini convention), ?api_key= and friends, served or refused."""
    secret = register_secret("query-secret-0123456789")
    for query in (f"key={secret}", f"alt=sse&api_key={secret}", f"access_token={secret}&x=1"):
        requests.get(f"{gw.url}/v1/models?{query}", timeout=10)
        requests.get(f"{gw.url}/v1/models?{query}", headers=auth_headers(), timeout=10)
    exchange(gw.port, f"GET /v1/models?key={secret} HTTP/7.0\r\n\r\n".encode())  # refused
    time.sleep(0.5)  # the access log is written after the answer
    logs = gw.logs()
    assert secret not in logs
    assert logs.count("=[redacted]") >= 6
