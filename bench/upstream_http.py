"""bench.upstream_http
~~~~~~~~~~~~~~~~~~~~~
``python -m bench.upstream_http``: CPU time of the calling thread per upstream
POST over the HTTP transport (``gateway.upstream.http.client.post`` and its
answer read to the end by ``Reader``), against a local server answering a small
SSE body with the ~15 headers the Codex backend sends; keep-alive, so no
handshake. Each of the client's savings is taken back in turn (a patch of its
class attribute), all in one process run, so before and after meet the same
machine load; best of several repetitions. Rows for ``bench.micro``.
"""
from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import threading
import time
from unittest import mock

from requests.adapters import HTTPAdapter

from .bodies import SMALL_REQUEST

_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Sun, 06 Dec 2026 21:00:00 GMT\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Connection: keep-alive\r\n"
    b"x-codex-primary-used-percent: 12\r\n"
    b"x-codex-primary-window-minutes: 300\r\n"
    b"x-codex-primary-reset-after-seconds: 9876\r\n"
    b"x-codex-secondary-used-percent: 3\r\n"
    b"x-codex-secondary-window-minutes: 10080\r\n"
    b"x-codex-secondary-reset-after-seconds: 501234\r\n"
    b"x-codex-primary-over-secondary-limit-percent: 0\r\n"
    b"openai-version: 2020-10-01\r\n"
    b"x-request-id: 6c1d2f7e-4a0b-4d51-9c1e-2b9f3a5d7e80\r\n"
    b"x-envoy-upstream-service-time: 41\r\n"
    b"strict-transport-security: max-age=31536000; includeSubDomains; preload\r\n"
    b"cf-cache-status: DYNAMIC\r\n"
    b"set-cookie: __cf_bm=Zq3xk1VbJmKf0tq9a8Wn2oQ.h7YlRr4uPZs-1765054800-1.0.1.1-Ab; "
    b"path=/; expires=Sun, 06-Dec-26 21:30:00 GMT; domain=.chatgpt.com; HttpOnly; Secure; "
    b"SameSite=None\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"server: cloudflare\r\n"
    b"cf-ray: 8f2a1b3c4d5e6f70-FRA\r\n"
    b"alt-svc: h3=\":443\"; ma=86400\r\n"
    b"\r\n")
_EVENTS = b"".join(
    b"event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%d}\n\n" % (t, t, i)
    for i, t in enumerate([b"response.created", b"response.in_progress",
                           b"response.output_text.delta", b"response.output_text.delta",
                           b"response.output_text.done", b"response.completed"]))
ANSWER = _HEAD + b"%x\r\n%s\r\n0\r\n\r\n" % (len(_EVENTS), _EVENTS)


def serve_forever(listener: socket.socket, answer: bytes = ANSWER, seen=None) -> None:
    """Answer every request on *listener*'s connections with *answer* (keep-alive),
    each request's bytes appended to *seen* when given. Returns once it is closed."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_answer, args=(conn, answer, seen), daemon=True).start()


def _answer(conn: socket.socket, answer: bytes, seen) -> None:
    buf = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buf:
                got = conn.recv(65536)
                if not got:
                    return
                buf += got
            head = buf.split(b"\r\n\r\n", 1)[0]
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            end = len(head) + 4 + length
            while len(buf) < end:
                buf += conn.recv(65536)
            if seen is not None:
                seen.append(buf[:end])
            buf = buf[end:]
            conn.sendall(answer)


@contextlib.contextmanager
def server():
    """The server in a child process: its work neither counts nor takes the GIL."""
    child = subprocess.Popen([sys.executable, "-m", "bench.upstream_http", "--serve"],
                             stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}/backend-api/codex/responses"
    finally:
        child.kill()
        child.wait()


def serve() -> int:
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    serve_forever(listener)
    return 0


HEADERS = {"Authorization": "Bearer " + "e" * 900, "chatgpt-account-id": "acc-0123456789",
           "OpenAI-Beta": "responses=experimental", "originator": "codex_cli_rs",
           "session_id": "0199f0c2-7a3b-7c11-9d4e-5f6a7b8c9d0e",
           "Content-Type": "application/json", "Accept": "text/event-stream",
           "User-Agent": "codex_cli_rs/0.46.0"}


def _cpu_per_request(url: str, n: int) -> float:
    """CPU µs of this thread (user and system) per post + its answer read to the end."""
    from gateway.relay import EOF
    from gateway.upstream.http import client

    start = time.thread_time()
    for _ in range(n):
        reader = client.Reader(client.post(url, SMALL_REQUEST, HEADERS, (5, 5)))
        while reader.next(5) is not EOF:
            pass
        reader.close()
    return (time.thread_time() - start) / n * 1e6


def _savings():
    """Each saving and the patch that takes it back: (name, patch)."""
    from gateway.upstream.http import client, wire
    return [
        ("plain header block parsed without the email package",
         lambda: _patches((wire.Connection, "response_class", http.client.HTTPResponse),
                          (wire.TLSConnection, "response_class", http.client.HTTPResponse))),
        ("request head and body in one send",
         lambda: _patches((wire._OneSend, "request", _stock_request))),
        ("no cookie jar filled per answer",
         lambda: _patches((client._Adapter, "build_response", HTTPAdapter.build_response))),
        ("request built directly, not a prepared copy re-prepared",
         lambda: _patches((client, "_request", _stock_prepared))),
    ]


def _stock_request(self, *args, **kwargs):
    from gateway.upstream.http import wire
    return super(wire._OneSend, self).request(*args, **kwargs)


def _stock_prepared(url, headers, data):
    """What ``client.post`` did before ``client._request``."""
    from gateway.upstream.http import client
    prepared = client._prepared(url).copy()
    prepared.prepare_headers(headers)
    prepared.prepare_body(data, None)
    return prepared


@contextlib.contextmanager
def _patches(*targets):
    with contextlib.ExitStack() as stack:
        for obj, attr, value in targets:
            stack.enter_context(mock.patch.object(obj, attr, value))
        yield


def rows(n: int = 50, repeat: int = 40) -> list[tuple[str, float]]:
    """Stock (every saving taken back), then the savings added one at a time. The
    variants take turns, *repeat* rounds of *n* requests each; the best round of each
    counts, so a burst of load elsewhere spoils one round of every variant at most."""
    savings = _savings()
    labels = ["none"] + ["+ " + name for name, _ in savings]
    best = [float("inf")] * len(labels)
    with server() as url:
        for round_ in range(repeat + 1):
            for kept in range(len(labels)):
                with contextlib.ExitStack() as stack:
                    for _, undo in savings[kept:]:
                        stack.enter_context(undo())
                    got = _cpu_per_request(url, n if round_ else 10)  # round 0 warms up
                if round_:
                    best[kept] = min(best[kept], got)
    return [(f"upstream HTTP post + answer read, CPU per request: {label}", us)
            for label, us in zip(labels, best)]


def piece_rows(number: int = 300, repeat: int = 30) -> list[tuple[str, float]]:
    """The savings that are CPU alone, each timed apart (stock, then ours): steadier
    than the whole request on a busy machine, whose system calls vary."""
    import io

    from gateway.upstream.http import client, wire

    class _Socket:
        def makefile(self, mode):
            return io.BytesIO(ANSWER)

    def answer():
        raw = http.client.HTTPResponse(_Socket())
        raw.begin()
        from urllib3 import HTTPResponse
        return HTTPResponse(body=raw, headers=dict(raw.msg.items()), status=200,
                            preload_content=False, original_response=raw)

    url = "https://chatgpt.com/backend-api/codex/responses"
    data = client.jsonio.dumps(SMALL_REQUEST)
    resp, request = answer(), client._request(url, HEADERS, data)
    adapter = client._Adapter(max_retries=0)
    cases = [
        ("answer header block parsed, its items() read (as urllib3 does)",
         lambda: http.client.parse_headers(io.BytesIO(_HEAD[17:])).items(),
         lambda: wire.parse_headers(io.BytesIO(_HEAD[17:])).items()),
        ("answer built (requests.Response)",
         lambda: HTTPAdapter.build_response(adapter, request, resp),
         lambda: adapter.build_response(request, resp)),
        ("request built", lambda: _stock_prepared(url, HEADERS, data),
         lambda: client._request(url, HEADERS, data)),
    ]
    best: dict[str, float] = {}
    for _ in range(repeat):  # alternated, as rows() does
        for name, stock, ours in cases:
            for label, func in (("stock", stock), ("ours", ours)):
                key = f"upstream HTTP, {name}: {label}"
                start = time.thread_time()
                for _ in range(number):
                    func()
                us = (time.thread_time() - start) / number * 1e6
                best[key] = min(best.get(key, us), us)
    return list(best.items())


def main() -> int:
    for name, us in piece_rows() + rows():
        print(f"| {name} | {us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(serve() if "--serve" in sys.argv else main())
