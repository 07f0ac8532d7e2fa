"""The upstream WebSocket client on a socket of its own: the upgrade (headers,
refusals, TLS), messages with timeouts, pings, the end of a connection."""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, CloseConnection, Ping, RejectConnection,
                            RejectData, Request, TextMessage)

from gateway.errors import UpstreamBroken, UpstreamUnreachable
from gateway.upstream.ws import client as websocket
from tests.support import readable, self_signed_cert


class Backend:
    """One-connection WebSocket server on a thread. *mode*: "echo" (each text message
    comes back as {"echo": …}), "refuse" (426 with a JSON body), "drop" (closes
    during the upgrade), "close" (a close frame after the first message)."""

    def __init__(self, mode="echo", tls: ssl.SSLContext | None = None):
        self.mode, self.tls = mode, tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request_headers: dict = {}
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        sock, _ = self.listener.accept()
        conn = WSConnection(ConnectionType.SERVER)
        try:
            if self.tls:
                sock = self.tls.wrap_socket(sock, server_side=True)
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                conn.receive_data(data)
                for event in conn.events():
                    if isinstance(event, Request):
                        self.request_headers = {k.decode(): v.decode()
                                                for k, v in event.extra_headers}
                        if self.mode == "drop":
                            sock.close()
                            return
                        if self.mode == "refuse":
                            body = json.dumps({"error": {"message": "no"}}).encode()
                            sock.sendall(conn.send(RejectConnection(
                                status_code=426, has_body=True, headers=[
                                    (b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())])))
                            sock.sendall(conn.send(RejectData(data=body)))
                            sock.close()
                            return
                        sock.sendall(conn.send(AcceptConnection(
                            extra_headers=[(b"x-codex-turn-state", b"ts-1")])))
                    elif isinstance(event, TextMessage):
                        sock.sendall(conn.send(TextMessage(data=json.dumps({"echo": event.data}))))
                        if self.mode == "close":
                            sock.sendall(conn.send(CloseConnection(code=1011, reason="bye")))
                    elif isinstance(event, Ping):
                        sock.sendall(conn.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        sock.close()
                        return
        except OSError:
            pass

    @property
    def url(self):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/backend-api/codex/responses"

    def close(self):
        self.listener.close()


HEADERS = {"Authorization": "Bearer tok", "Content-Type": "application/json",
           "Accept": "text/event-stream", "session_id": "s-1", "chatgpt-account-id": "a-1"}


def test_the_upgrade_carries_the_http_headers_and_the_beta_flag():
    backend = Backend()
    sock = websocket.connect(backend.url, HEADERS, 2, 2)
    try:
        got = backend.request_headers
        assert got["authorization"] == "Bearer tok" and got["session_id"] == "s-1"
        assert got["chatgpt-account-id"] == "a-1"
        assert got["openai-beta"] == "responses_websockets=2026-02-06"
        assert "content-type" not in got and "accept" not in got
        assert sock.headers["X-Codex-Turn-State"] == "ts-1"
        sock.send_text('{"type":"response.create"}')
        assert json.loads(sock.receive(2)) == {"echo": '{"type":"response.create"}'}
        assert sock.receive(0.05) is None  # nothing more: a timeout, not an error
        assert sock.alive() and sock.probe(2)
    finally:
        sock.close()
        backend.close()


@pytest.mark.parametrize("value,expected", [
    (None, "responses_websockets=2026-02-06"),
    ("responses=v1", "responses=v1, responses_websockets=2026-02-06"),
    ("responses_websockets=2099-01-01", "responses_websockets=2099-01-01"),
])
def test_the_beta_flag_keeps_a_clients_own_value(value, expected):
    headers = {"OpenAI-Beta": value} if value else {}
    assert dict(websocket.upgrade_headers(headers))[b"OpenAI-Beta"] == expected.encode()


def test_a_refused_upgrade_says_its_status_and_body():
    backend = Backend("refuse")
    with pytest.raises(websocket.Refused) as info:
        websocket.connect(backend.url, HEADERS, 2, 2)
    assert info.value.status == 426
    assert json.loads(info.value.body) == {"error": {"message": "no"}}
    backend.close()


def test_a_connection_dropped_during_the_upgrade_is_broken():
    backend = Backend("drop")
    with pytest.raises(UpstreamBroken):
        websocket.connect(backend.url, HEADERS, 2, 2)
    backend.close()


def test_nothing_listening_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UpstreamUnreachable):
        websocket.connect(f"http://127.0.0.1:{port}/x", HEADERS, 2, 2)


def test_a_close_frame_from_the_backend_ends_the_socket():
    backend = Backend("close")
    sock = websocket.connect(backend.url, HEADERS, 2, 2)
    sock.send_text("{}")
    assert sock.receive(2) == '{"echo": "{}"}'
    with pytest.raises(UpstreamBroken, match="1011"):
        sock.receive(2)
    assert sock.closed and not sock.alive()
    with pytest.raises(UpstreamBroken):
        sock.send_text("{}")
    backend.close()


def test_wss_goes_through_tls(tmp_path):
    cert, key = self_signed_cert(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    backend = Backend(tls=server)
    client = ssl.create_default_context(cafile=str(cert))
    assert websocket.socket_url(backend.url).startswith("wss://")
    sock = websocket.connect(backend.url, HEADERS, 2, 2, ssl_context=client)
    try:
        sock.send_text("{}")
        assert sock.receive(2) == '{"echo": "{}"}'
        assert sock.receive(0.05) is None
    finally:
        sock.close()
        backend.close()


def test_an_untrusted_certificate_is_refused(tmp_path):
    cert, key = self_signed_cert(tmp_path, san=None)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    backend = Backend(tls=server)
    with pytest.raises(UpstreamUnreachable, match="TLS"):
        websocket.connect(backend.url, HEADERS, 2, 2)  # the system's CAs only
    backend.close()


def test_wss_messages_read_without_waiting_arrive_whole_and_in_order(tmp_path):
    """The relayed read (``receive_ready``) over TLS: a frame spread over several TLS
    records goes through wsproto, the small ones around it are read directly, and
    their order is kept."""

    cert, key = self_signed_cert(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    backend = Backend(tls=server)
    client = ssl.create_default_context(cafile=str(cert))
    sock = websocket.connect(backend.url, HEADERS, 2, 2, ssl_context=client)
    try:
        sent = ["small-1", "x" * 40000, "small-2", "small-3"]
        for text in sent:
            sock.send_text(text)
        got, deadline = [], time.monotonic() + 5
        while (not got or json.loads(got[-1])["echo"] != "small-3") \
                and time.monotonic() < deadline:
            ready = sock.receive_ready()
            if ready is None:
                readable(sock.sock, 0.5)  # what the relay's epoll does
                continue
            got += ready
        # The test backend echoes each piece wsproto hands it: the large message comes
        # back as several, in order, between the small ones.
        echoes = [json.loads(m)["echo"] for m in got]
        assert echoes[0] == "small-1" and echoes[-2:] == ["small-2", "small-3"]
        assert "".join(echoes) == "".join(sent) and len(echoes) > len(sent)
        assert sock.receive_ready() is None
    finally:
        sock.close()
        backend.close()
