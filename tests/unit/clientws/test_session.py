"""The WebSocket session over a real socket pair, with a scripted executor stream."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from werkzeug.datastructures import Headers
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage

from gateway.errors import GatewayError, bad_request
from gateway.sse import make_event
from gateway.clientws.session import TICK, Session
from gateway.clientws.connection import WebSocket


def user(text):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def answer(n, items=()):
    rid = f"resp_up{n}"
    events = [{"type": "response.created", "response": {"id": rid, "output": []}}]
    for i, item in enumerate(items):
        events.append({"type": "response.output_item.done", "output_index": i, "item": item})
    events.append({"type": "response.completed", "response": {"id": rid, "output": list(items)}})
    return events


class Stream:
    """What the executor's open() returns, scripted: payloads, None = a silent tick."""

    def __init__(self, script, turn_state=None):
        self.script = script
        self.closed_at = None
        self.turn_state = turn_state

    def client_headers(self):
        return {"x-codex-turn-state": self.turn_state} if self.turn_state else {}

    def events(self, tick=TICK):  # the executor's stream ticks every TICK (api.websocket)
        for item in self.script:
            if item is None:
                time.sleep(tick)
                yield None
            else:
                yield make_event(item)

    def batches(self):  # one event per read, as a model streams
        for event in self.events():
            yield None if event is None else [event]

    def close(self, outcome=None):
        self.closed_at = time.monotonic()
        self.outcome = outcome

    def discard(self):
        self.closed_at = time.monotonic()
        self.outcome = "discarded"


class Upstream:
    def __init__(self):
        self.calls = []
        self.scripts = []

    def __call__(self, body, headers):
        self.calls.append((body, dict(headers)))
        script = self.scripts.pop(0)
        if isinstance(script, Exception):
            raise script
        self.streams = getattr(self, "streams", []) + [script]
        return script


def normalise(body):
    if "model" not in body:
        raise bad_request("Missing required parameter: 'model'.", param="model")
    return body


class Client:
    """The client side: wsproto over the other end of the socket pair."""

    def __init__(self, sock):
        self.sock = sock
        self.conn = Connection(ConnectionType.CLIENT)
        self.events = []
        sock.settimeout(5)

    def send(self, value):
        text = value if isinstance(value, str) else json.dumps(value)
        self.sock.sendall(self.conn.send(TextMessage(data=text)))

    def next(self, kinds=(TextMessage,)):
        while True:
            while self.events:
                event = self.events.pop(0)
                if isinstance(event, kinds):
                    return json.loads(event.data) if isinstance(event, TextMessage) else event
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.conn.receive_data(data)
            self.events += list(self.conn.events())

    def until_done(self):
        out = []
        while True:
            frame = self.next()
            out.append(frame)
            if frame["type"] in ("response.completed", "response.failed", "error"):
                return out


@pytest.fixture
def pair():
    """(client, upstream, session, run thread, stopping flag)."""
    server_sock, client_sock = socket.socketpair()
    upstream = Upstream()
    stopping = threading.Event()
    session = Session(WebSocket(server_sock, 1 << 20), upstream, normalise,
                      Headers({"session-id": "s-1", "x-codex-turn-metadata": "prewarm"}),
                      keepalive=0, stopping=stopping.is_set, tick=0.1)
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    yield Client(client_sock), upstream, session, thread, stopping
    stopping.set()
    client_sock.close()
    thread.join(5)
    server_sock.close()


BASE = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "b"}]}
FRAME = {"type": "response.create", "model": "m", "stream": True}


def test_prewarm_then_deltas_reach_the_upstream_as_full_inputs(pair):
    client, upstream, session, _, _ = pair
    client.send({**FRAME, "generate": False, "input": [BASE]})
    prewarm = client.until_done()
    assert [f["type"] for f in prewarm] == ["response.created", "response.in_progress",
                                            "response.completed"]
    assert upstream.calls == []  # no upstream request for a prewarm
    call = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"}
    upstream.scripts.append(Stream(answer(1, [call]), turn_state="ts-1"))
    meta = {"turn_id": "t1", "x-codex-turn-metadata": '{"turn_id":"t1"}'}
    client.send({**FRAME, "previous_response_id": prewarm[-1]["response"]["id"],
                 "input": [user("go")], "client_metadata": meta})
    frames = client.until_done()
    assert [f["type"] for f in frames] == ["response.created", "response.output_item.done",
                                           "response.completed"]
    body, headers = upstream.calls[0]
    assert body["input"] == [BASE, user("go")] and "previous_response_id" not in body
    assert "generate" not in body and "type" not in body and "stream" not in body
    assert headers["x-codex-turn-metadata"] == '{"turn_id":"t1"}'  # the frame's, not the upgrade's
    assert headers["session-id"] == "s-1" and "x-codex-turn-state" not in headers
    # The tool follow-up: a delta on the response with the call, same turn.
    upstream.scripts.append(Stream(answer(2, [user("done")])))
    result = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    client.send({**FRAME, "previous_response_id": "resp_up1", "input": [result],
                 "client_metadata": meta})
    client.until_done()
    body, headers = upstream.calls[1]
    assert body["input"] == [BASE, user("go"), call, result]
    assert headers["x-codex-turn-state"] == "ts-1"
    assert session.responses == 2 and session.prewarms == 1 and session.expanded == 2


# -- a prewarm forwarded to an upstream socket ------------------------------------------------

def upstream_prewarm(rid="resp_up0"):
    """What the backend's socket answers a generate:false: no output, no cost."""
    response = {"id": rid, "status": "in_progress", "output": []}
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    return [{"type": "response.created", "response": response},
            {"type": "response.in_progress", "response": response},
            {"type": "response.completed",
             "response": {**response, "status": "completed", "usage": usage}}]


@pytest.fixture
def forwarding():
    """(client, upstream, prewarms, session): a session whose prewarms may be forwarded."""
    server_sock, client_sock = socket.socketpair()
    upstream, prewarms = Upstream(), Upstream()
    stopping = threading.Event()
    session = Session(WebSocket(server_sock, 1 << 20), upstream, normalise,
                      Headers({"session-id": "s-1"}), keepalive=0, stopping=stopping.is_set,
                      tick=0.1, prewarm_upstream=prewarms)
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    yield Client(client_sock), upstream, prewarms, session
    stopping.set()
    client_sock.close()
    thread.join(5)
    server_sock.close()


def test_a_forwarded_prewarm_relays_the_upstreams_answer_and_is_continued(forwarding):
    client, upstream, prewarms, session = forwarding
    stream = Stream(upstream_prewarm())
    prewarms.scripts.append(stream)
    client.send({**FRAME, "generate": False, "input": [BASE]})
    frames = client.until_done()
    assert frames == upstream_prewarm()  # the backend's own answer, its id included
    body, headers = prewarms.calls[0]
    assert body["input"] == [BASE] and "generate" not in body and headers["session-id"] == "s-1"
    assert stream.outcome == "prewarm" and upstream.calls == []
    # The connection continues from the backend's prewarm as from any response.
    upstream.scripts.append(Stream(answer(1, [user("hi")])))
    client.send({**FRAME, "previous_response_id": "resp_up0", "input": [user("go")]})
    assert client.until_done()[-1]["type"] == "response.completed"
    assert upstream.calls[0][0]["input"] == [BASE, user("go")]
    assert session.prewarms == 1 and session.responses == 1


@pytest.mark.parametrize("script", [
    None,                                                   # the upstream is reached over HTTP
    GatewayError(503, "no account", code="no_upstream_account"),
    [{"type": "error", "error": {"code": "upstream_connection_lost", "message": "gone"}}],
    [{"type": "response.created", "response": {"id": "r"}},
     {"type": "response.failed", "response": {"id": "r", "error": {"code": "server_error"}}}],
], ids=["not-forwarded", "gateway-error", "broken", "failed"])
def test_a_prewarm_that_cannot_be_forwarded_is_answered_here(forwarding, script):
    client, upstream, prewarms, _ = forwarding
    stream = Stream(script) if isinstance(script, list) else script
    prewarms.scripts.append(stream)
    client.send({**FRAME, "generate": False, "input": [BASE]})
    frames = client.until_done()
    assert [f["type"] for f in frames] == ["response.created", "response.in_progress",
                                           "response.completed"]
    rid = frames[-1]["response"]["id"]
    assert rid.startswith("resp_gw") and frames[-1]["response"]["output"] == []
    if isinstance(stream, Stream):
        assert stream.outcome == "discarded"  # a failure nobody saw: no record of it
    upstream.scripts.append(Stream(answer(1, [user("hi")])))
    client.send({**FRAME, "previous_response_id": rid, "input": [user("go")]})
    client.until_done()
    assert upstream.calls[0][0]["input"] == [BASE, user("go")]


def test_a_prewarm_the_upstream_does_not_answer_in_time_is_answered_here(
        forwarding, monkeypatch):
    from gateway.clientws import session
    monkeypatch.setattr(session, "PREWARM_WAIT", 0.3)
    client, _, prewarms, _ = forwarding
    stream = Stream([upstream_prewarm()[0]] + [None] * 20)
    prewarms.scripts.append(stream)
    started = time.monotonic()
    client.send({**FRAME, "generate": False, "input": [BASE]})
    frames = client.until_done()
    assert time.monotonic() - started < 2
    assert frames[-1]["response"]["id"].startswith("resp_gw")
    assert stream.outcome == "discarded"


def test_bad_frames_get_error_frames_and_the_connection_stays_usable(pair):
    client, upstream, _, _, _ = pair
    client.send("not json")
    assert client.next()["error"]["code"] == "invalid_json"
    client.send({"type": "response.append"})
    assert client.next()["error"]["code"] == "unsupported_frame_type"
    client.send({"type": "response.create", "input": []})
    err = client.next()
    assert err == {"type": "error", "status": 400, "error": {
        "type": "invalid_request_error", "code": "invalid_request",
        "message": "Missing required parameter: 'model'.", "param": "model"}}
    client.send({**FRAME, "previous_response_id": "resp_nope", "input": []})
    assert client.next()["error"]["code"] == "previous_response_not_found"
    upstream.scripts.append(GatewayError(400, "Unsupported value: 'x'", code="invalid_value"))
    client.send({**FRAME, "input": [user("x")]})
    assert client.next() == {"type": "error", "status": 400, "error": {
        "type": "invalid_request_error", "code": "invalid_value",
        "message": "Unsupported value: 'x'"}}
    upstream.scripts.append(Stream(answer(3)))
    client.send({**FRAME, "input": [user("hi")]})
    assert client.until_done()[-1]["type"] == "response.completed"


def test_failure_after_output_is_an_error_frame_and_not_remembered(pair):
    client, upstream, session, _, _ = pair
    broken = [{"type": "response.created", "response": {"id": "resp_b"}},
              {"type": "response.output_text.delta", "delta": "x"},
              {"type": "error", "code": "stream_truncated", "message": "closed early"}]
    upstream.scripts.append(Stream(broken))
    client.send({**FRAME, "input": [user("hi")]})
    frames = client.until_done()
    assert frames[-1] == {"type": "error", "status": 502, "error": {
        "type": "server_error", "code": "stream_truncated", "message": "closed early"}}
    assert "resp_b" not in session.memory


def test_client_gone_mid_response_closes_the_upstream_within_a_second(pair):
    client, upstream, _, thread, _ = pair
    stream = Stream([{"type": "response.created", "response": {"id": "r"}}] + [None] * 100)
    upstream.scripts.append(stream)
    client.send({**FRAME, "input": [user("think long")]})
    assert client.next()["type"] == "response.created"
    client.sock.close()
    gone = time.monotonic()
    thread.join(3)
    assert stream.closed_at is not None and stream.closed_at - gone < 1.0
    assert not thread.is_alive()


def test_shutdown_lets_the_running_response_finish_then_closes_with_1001(pair):
    client, upstream, _, thread, stopping = pair
    slow = [{"type": "response.created", "response": {"id": "r"}}, None, None,
            {"type": "response.completed", "response": {"id": "r", "output": []}}]
    upstream.scripts.append(Stream(slow))
    client.send({**FRAME, "input": [user("hi")]})
    assert client.next()["type"] == "response.created"
    stopping.set()
    assert client.next()["type"] == "response.completed"
    close = client.next((CloseConnection,))
    assert close.code == 1001
    client.sock.sendall(client.conn.send(close.response()))
    thread.join(3)
    assert not thread.is_alive()


def test_silence_towards_the_client_sends_pings():
    server_sock, client_sock = socket.socketpair()
    stopping = threading.Event()
    session = Session(WebSocket(server_sock, 1 << 20), Upstream(), normalise, Headers(),
                      keepalive=0.2, stopping=stopping.is_set, tick=0.05)
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    try:
        client = Client(client_sock)
        assert isinstance(client.next((Ping,)), Ping)
    finally:
        stopping.set()
        thread.join(5)
        client_sock.close()
        server_sock.close()


def close_code(limit: int, normalise, frame: dict) -> int:
    """Serve *frame* on a fresh session whose WebSocket reads messages up to *limit*
    bytes: the code it closes the socket with (its thread has ended by then)."""
    server_sock, client_sock = socket.socketpair()
    session = Session(WebSocket(server_sock, limit), Upstream(), normalise, Headers(),
                      keepalive=0, tick=0.05)
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    try:
        client = Client(client_sock)
        client.send(frame)
        code = client.next((CloseConnection,)).code
        thread.join(3)
        assert not thread.is_alive()
        return code
    finally:
        client_sock.close()
        server_sock.close()


def test_a_message_above_the_limit_closes_with_1009():
    assert close_code(100, normalise, {**FRAME, "input": [user("x" * 200)]}) == 1009


def test_a_bug_closes_the_socket_with_1011_and_ends_the_session():
    def broken_normalise(body):
        raise RuntimeError("bug")

    assert close_code(1 << 20, broken_normalise, {**FRAME, "input": []}) == 1011


def test_a_connection_on_a_descriptor_above_1023_is_served():
    """select() refuses descriptors above 1023, which a busy worker reaches: the
    session must wait with poll (else every such WebSocket closes at once, 1006)."""
    import fcntl
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 2048)), hard))
    server_sock, client_sock = socket.socketpair()
    # The lowest free descriptor from 1500 up: dup2 onto 1500 would silently close
    # whatever this process had there (after tests/inprocess ~1,270 descriptors are
    # open: an earlier test's pooled connection, say).
    high = fcntl.fcntl(server_sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 1500)
    assert high >= 1500
    server_sock.close()
    server_sock = socket.socket(fileno=high)
    upstream = Upstream()
    upstream.scripts.append(Stream(answer(1)))
    session = Session(WebSocket(server_sock, 1 << 20), upstream, normalise, Headers({}),
                      keepalive=0, tick=0.1)
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    try:
        client = Client(client_sock)
        client.send(dict(FRAME, input=[user("hi")]))
        assert client.until_done()[-1]["type"] == "response.completed"
    finally:
        client_sock.close()
        thread.join(5)
        server_sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
