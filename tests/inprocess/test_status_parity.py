"""One code -> status table for every transport (gateway.protocol.STATUS_BY_CODE).

Every upstream error code is walked through every way a client can learn of it:
HTTP before the first byte, a client WebSocket's error frame (before the answer
starts and in-stream, after it started) and, where a dialect names an in-stream
error's kind (Chat's and Messages' SSE error types, Gemini's error code), the
in-stream one against what the same dialect gives the code over HTTP. All must agree.
"""
from __future__ import annotations

import json
import socket
import threading

import pytest
from werkzeug.datastructures import Headers

from gateway import protocol
from gateway.api import websocket as ws_api
from gateway.dialects.messages.errors import error_type as messages_type
from gateway.errors import GatewayError
from gateway.clientws.session import Session
from gateway.clientws.connection import WebSocket
from tests.support import CLIENT_KEY, InProcess
from tests.unit.clientws.test_session import Client

CODES = sorted(protocol.STATUS_BY_CODE)
RESPONSES = {"model": "gpt-5-codex", "input": "Say hello"}
CHAT = {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "gpt-5-codex", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}


class Parity:
    """A fresh gateway per question (an in-stream limit cools its account)."""

    def __init__(self, upstream, tmp_path, code):
        self.upstream, self.tmp_path, self.code = upstream, tmp_path, code
        self.n = 0

    def gateway(self, fault: str, **params) -> InProcess:
        self.upstream.reset()
        # twice: a server error is tried once more on the same account
        self.upstream.inject(fault, count=2, code=self.code, **params)
        self.n += 1
        return InProcess(self.upstream, self.tmp_path / str(self.n), ("acct-a",), {})

    def early(self, fault: str = "response_failed") -> InProcess:
        return self.gateway(fault)

    def mid_stream(self) -> InProcess:
        return self.gateway("error_event", after_output=True)


def websocket_frames(gw: InProcess, frame: dict) -> list[dict]:
    """One ``response.create`` over a client WebSocket session: its frames to the end."""
    st = gw.app.extensions["gateway"]
    principal = st.keys.check(f"Bearer {CLIENT_KEY}", None)
    server_sock, client_sock = socket.socketpair()
    session = Session(WebSocket(server_sock, 1 << 20),
                      ws_api._upstream(st, principal, st.executor.open), ws_api._normalise,
                      Headers({"session-id": "parity"}), keepalive=0, tick=0.1)
    thread = threading.Thread(target=session.run, daemon=True)
    with gw.app.app_context():
        thread.start()
        client = Client(client_sock)
        client_sock.settimeout(30)  # only to detect a hang (the machine may be busy)
        try:
            client.send({"type": "response.create", **frame})
            return client.until_done()
        finally:
            client_sock.close()
            thread.join(5)
            server_sock.close()


def sse_error(resp) -> dict:
    """The error object of a streamed answer's last ``data:`` line (Chat or Messages)."""
    datas = [line[6:] for line in resp.get_data().split(b"\n") if line.startswith(b"data: ")]
    return json.loads(datas[-1])["error"]


@pytest.mark.parametrize("code", CODES)
def test_every_code_has_one_status_on_every_transport(code, upstream, tmp_path):
    p = Parity(upstream, tmp_path, code)
    status = protocol.status_of(code)

    # HTTP, before the first byte
    for fault in ("response_failed", "error_event"):
        resp = p.early(fault).post("/v1/responses", RESPONSES)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (status, code)

    # client WebSocket: the error frame before the answer started, and in-stream
    # (an ``error`` event: a ``response.failed`` that does not fail over reaches a
    # WebSocket client as the upstream's own event, as it does a streaming HTTP client)
    early = websocket_frames(p.early("error_event"), RESPONSES)[-1]
    assert (early["type"], early["status"], early["error"]["code"]) == ("error", status, code)
    mid = websocket_frames(p.mid_stream(), RESPONSES)
    assert any(f["type"] == "response.output_text.delta" for f in mid)  # it had started
    assert (mid[-1]["type"], mid[-1]["status"], mid[-1]["error"]["code"]) == \
        ("error", status, code)

    # Chat SSE: the in-stream error's type is the type of the same code over HTTP
    http = p.early().post("/v1/chat/completions", CHAT)
    assert http.status_code == status
    streamed = p.mid_stream().post("/v1/chat/completions", dict(CHAT, stream=True))
    assert streamed.status_code == 200
    assert sse_error(streamed)["type"] == http.get_json()["error"]["type"]

    # Messages SSE: the same, in Anthropic's types
    http = p.early().post("/v1/messages", MESSAGES)
    assert http.status_code == status
    assert http.get_json()["error"]["type"] == \
        messages_type(GatewayError(status, "m", code=code))
    streamed = p.mid_stream().post("/v1/messages", dict(MESSAGES, stream=True))
    assert streamed.status_code == 200
    assert sse_error(streamed)["type"] == http.get_json()["error"]["type"]

    # Gemini: the in-stream error object carries the same HTTP code
    gemini = "/v1beta/models/gemini-2.5-pro:{}"
    key = {"x-goog-api-key": CLIENT_KEY}
    contents = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    http = p.early().post(gemini.format("generateContent"), contents, headers=key, key=None)
    assert (http.status_code, http.get_json()["error"]["code"]) == (status, status)
    streamed = p.mid_stream().post(gemini.format("streamGenerateContent") + "?alt=sse",
                                   contents, headers=key, key=None)
    assert streamed.status_code == 200
    text = streamed.get_data(as_text=True)
    assert json.loads(text.rstrip("\n").rsplit("\n", 1)[-1])["error"]["code"] == status
