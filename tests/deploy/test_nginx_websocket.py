"""WebSockets through the shipped nginx server block (real nginx → real gunicorn →
fake Codex upstream): Codex CLI opens GET /v1/responses as one."""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support import auth_headers

from .nginx import SHIPPED, Nginx, directive, seconds

SHIPPED_TEXT = SHIPPED.read_text()
FRAME = {"type": "response.create", "model": "gpt-5-codex", "stream": True,
         "prompt_cache_key": "thread-nginx"}
USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[say:hi]]"}]}


def ws_connect(url: str, ca_file: str | None = None, **headers):
    ctx = ssl.create_default_context(cafile=ca_file) if url.startswith("wss") else None
    return connect(url + "/v1/responses", additional_headers=auth_headers(**headers),
                   ssl=ctx, open_timeout=10, close_timeout=2)


def answer(ws) -> list[dict]:
    frames = []
    while not frames or frames[-1]["type"] not in ("response.completed", "error"):
        frames.append(json.loads(ws.recv(timeout=10)))
    return frames


def test_the_config_passes_upgrades_on_and_keeps_keepalive_for_the_rest():
    assert "map $http_upgrade $connection_upgrade {" in SHIPPED_TEXT
    assert directive(SHIPPED_TEXT, "proxy_set_header Upgrade") == ["$http_upgrade"]
    assert directive(SHIPPED_TEXT, "proxy_set_header Connection") == ["$connection_upgrade"]
    assert directive(SHIPPED_TEXT, "proxy_http_version") == ["1.1"]
    # The same long read timeout as streams: an idle socket is pinged every 15 s.
    assert seconds(directive(SHIPPED_TEXT, "proxy_read_timeout")[0]) >= 900


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_prewarm_and_a_turn_through_nginx(stack, upstream, scheme):
    url = (stack.url.replace("http://", "ws://") if scheme == "ws"
           else stack.nginx.tls_url.replace("https://", "wss://"))
    with ws_connect(url, stack.nginx.ca_file, **{"session-id": "thread-nginx"}) as ws:
        ws.send(json.dumps({**FRAME, "generate": False, "input": []}))
        rid = answer(ws)[-1]["response"]["id"]
        ws.send(json.dumps({**FRAME, "previous_response_id": rid, "input": [USER]}))
        frames = answer(ws)
        assert frames[-1]["type"] == "response.completed"
        assert "".join(f.get("delta", "") for f in frames) == "hi"
    [rec] = upstream.requests
    assert rec["body"]["input"] == [USER]
    assert rec["headers"]["session-id"] == rec["body"]["prompt_cache_key"]
    access = (stack.nginx.prefix / "access.log").read_text()
    assert '"GET /v1/responses HTTP/1.1" 101' in access


def test_wrong_key_is_a_json_401_through_nginx(stack, upstream):
    with pytest.raises(InvalidStatus) as info:
        connect(stack.url.replace("http://", "ws://") + "/v1/responses",
                additional_headers={"Authorization": "Bearer nope"}, open_timeout=10)
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body)["error"]["type"] == "authentication_error"
    assert upstream.requests == []


def test_headers_nginx_sends_upstream_for_an_upgrade():
    """nginx straight in front of a socket that records the request: what gunicorn gets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen = {}

    def serve():
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            seen["head"] = data.decode()
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with Nginx(listener.getsockname()[1]) as nginx:
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as s:
                s.sendall(b"GET /v1/responses HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                s.recv(65536)
            thread.join(5)
    finally:
        listener.close()
    lines = seen["head"].split("\r\n")
    assert lines[0] == "GET /v1/responses HTTP/1.1"
    got = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    assert got["connection"] == "upgrade" and got["upgrade"] == "websocket"
    assert got["sec-websocket-key"] == "dGhlIHNhbXBsZSBub25jZQ=="
    assert got["sec-websocket-version"] == "13"


def test_client_disconnect_closes_the_upstream_through_nginx(stack, upstream):
    upstream.configure(silence=10)
    with ws_connect(stack.url.replace("http://", "ws://")) as ws:
        ws.send(json.dumps({**FRAME, "input": [USER]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "response.created"
        ws.socket.shutdown(socket.SHUT_RDWR)
        gone = time.time()
    deadline = gone + 5
    while time.time() < deadline and not upstream.requests[-1]["client_closed_at"]:
        time.sleep(0.05)
    rec = upstream.requests[-1]
    assert rec["client_closed_at"] and rec["client_closed_at"] - gone < 1.5
