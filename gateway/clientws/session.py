"""gateway.clientws.session
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
One client WebSocket on ``/v1/responses``: frames in, upstream events out.

Each ``response.create`` frame becomes one HTTP request to the upstream through
the shared executor (continuity, accounts and failover exactly as on HTTP),
after ``previous_response_id`` is expanded from the connection's memory. Every
upstream event goes back as one JSON text frame, in order. A prewarm
(``generate: false``) is forwarded on the conversation's upstream socket when
the upstream is reached over WebSocket (it generates nothing there, and the
socket then holds its input for the next turn's delta); otherwise, or when that
fails before its answer, it is answered here and costs no upstream request.

A bad frame or an upstream refusal is an error frame and the connection stays
usable. The session notices a client that left within a tick (0.5 s), even
while the upstream is silent, and closes the upstream stream; a graceful worker
shutdown lets the running response finish, then closes with 1001.

The executor, the request validation and the socket are handed in, so this
module imports no web framework and tests can drive it over a socket pair.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from ..dialects.responses import ws_frames
from ..dialects.responses.ws_memory import ConnectionMemory
from ..errors import GatewayError
from ..jsonio import dumps_text
from ..protocol import ERROR, OutputCollector
from ..record import Outcome
from ..relay import DONE, WAITING
from .connection import GOING_AWAY, INTERNAL_ERROR, Closed, WebSocket

log = logging.getLogger("gateway.request")

TICK = 0.5  # seconds: how fast a departed client or a shutdown is noticed
# A forwarded prewarm not answered by then is answered here (it must never make
# Codex wait long: it generates nothing).
PREWARM_WAIT = 5.0


class Session:
    """Serve one WebSocket until the client leaves or the worker stops.

    ``open_upstream(body, headers)`` returns an executor stream (``events()`` ticking with None,
    ``client_headers()``, ``close()``) or raises ``GatewayError``;
    ``normalise(body)`` validates a Responses request body (``GatewayError`` 400);
    ``headers`` are the upgrade request's (a mutable case-insensitive mapping with
    ``copy()``); ``keepalive`` seconds of silence towards the client send a ping
    (0: never); ``stopping()`` says the worker is shutting down;
    ``prewarm_upstream(body, headers)`` forwards a prewarm and returns its stream,
    or None when it must be answered here (None: always answered here);
    ``begin(body, headers)`` (optional) resolves what the body takes from the response
    store (a ``previous_response_id`` this connection does not hold, ``item_reference``)
    and returns the turn that keeps the answer (``keep_ws(collector)``).
    """

    def __init__(self, ws: WebSocket, open_upstream: Callable, normalise: Callable,
                 headers: Mapping, *, keepalive: float = 15.0,
                 stopping: Callable[[], bool] = lambda: False,
                 memory: ConnectionMemory | None = None, tick: float = TICK,
                 prewarm_upstream: Callable | None = None, relay=None,
                 begin: Callable | None = None):
        self.ws = ws
        self.relay = relay  # the worker's gateway.relay.Relay, where it may write to the socket
        self.open_upstream = open_upstream
        self.prewarm_upstream = prewarm_upstream
        self.begin = begin
        self.normalise = normalise
        self.headers = headers
        self.keepalive = keepalive
        self.stopping = stopping
        self.memory = memory if memory is not None else ConnectionMemory()
        self.tick = tick
        self.turn_state = ws_frames.TurnState()
        self.frames = self.responses = self.prewarms = self.errors = self.expanded = 0

    def run(self) -> str:
        """Serve frames until the end; returns how it ended (for the log line)."""
        started = time.monotonic()
        ended = "client_closed"
        try:
            while True:
                if self.stopping():
                    self.ws.close(GOING_AWAY, "server shutting down")
                    ended = "shutdown"
                    break
                message = self.ws.receive(self.tick)
                if message is None:
                    self._keepalive()
                    continue
                self.frames += 1
                self.handle(message)
        except Closed as closed:
            ended = f"client_closed:{closed.code}"
        except Exception:  # noqa: BLE001 - a bug ends this socket (1011), never the worker
            log.exception("websocket session failed")
            ended = "internal_error"
            self.ws.close(INTERNAL_ERROR, "internal gateway error")
        finally:
            self.memory.clear()
            self.ws.shutdown()
            log.info("websocket endpoint=responses frames=%d responses=%d prewarms=%d "
                     "expanded=%d errors=%d ended=%s ms=%d", self.frames, self.responses,
                     self.prewarms, self.expanded, self.errors, ended,
                     (time.monotonic() - started) * 1000)
        return ended

    def handle(self, message) -> None:
        """One client frame: an answer (events, or an error frame)."""
        try:
            frame = ws_frames.parse(message)
            previous = frame.get("previous_response_id")
            stored = self.begin is not None and isinstance(previous, str) and \
                previous not in self.memory  # the response store resolves it (begin)
            full_input = None if stored else self.memory.expand(frame)
            self.expanded += previous is not None
            body = self.normalise(ws_frames.request_body(frame, full_input))
            if stored:
                body["previous_response_id"] = previous
            turn = self.begin(body, self.headers) if self.begin is not None else None
            headers = self.headers.copy()
            for name, value in ws_frames.frame_headers(frame, self.turn_state).items():
                headers[name] = value
            if ws_frames.is_prewarm(frame):
                self._prewarm(body, headers)
                return
            stream = self.open_upstream(body, headers)
        except GatewayError as err:
            self.errors += 1
            self.ws.send_json(ws_frames.error_frame(err))
            return
        self._relay(stream, body["input"], ws_frames.turn_id(frame), turn)

    def _prewarm(self, body: dict, headers) -> None:
        """Forwarded when it can be (its events relayed, its id the backend's),
        else answered here; either way the connection can continue from it."""
        self.prewarms += 1
        forwarded = self._forward_prewarm(body, headers)
        if forwarded is not None:
            texts, response_id = forwarded
            self.ws.send_texts(texts)
        else:
            response_id = ws_frames.new_response_id()
            for event in ws_frames.prewarm_events(response_id, body.get("model", "")):
                self.ws.send_json(event)
        self.memory.remember(response_id, body["input"], [])

    def _forward_prewarm(self, body: dict, headers) -> tuple[list[str], str] | None:
        """The upstream's answer to the prewarm (its frames and response id), read
        whole before anything reaches the client so a failure is never seen; None
        when it was not forwarded or did not complete within PREWARM_WAIT."""
        if self.prewarm_upstream is None:
            return None
        try:
            stream = self.prewarm_upstream(body, headers)
        except GatewayError:
            return None
        if stream is None:
            return None
        collector = OutputCollector()
        texts: list[str] = []
        deadline = time.monotonic() + PREWARM_WAIT
        done = False
        try:
            for event in stream.events():
                if event is None:
                    self.ws.poll()
                    self._keepalive()
                elif event.type == ERROR:
                    break
                else:
                    texts.append(event.data_text)
                    if event.type in collector.WANTS:
                        collector.observe(event.type, event.data)
                if collector.outcome or time.monotonic() > deadline:
                    break
            done = collector.outcome == "completed" and bool(collector.response_id)
        finally:
            if done:
                stream.close(Outcome.PREWARM)
            else:
                stream.discard()
        return (texts, collector.response_id) if done else None

    def _relay(self, stream, full_input: list, turn: str, kept=None) -> None:
        self.responses += 1
        collector = OutputCollector()
        try:
            self.turn_state.observe(turn, stream.client_headers().get(ws_frames.TURN_STATE))
        except BaseException:
            stream.close()
            raise
        if self.relay is None or not self._in_loop(stream, collector):
            self._in_thread(stream, collector)
        if collector.continuable:
            self.memory.remember(collector.response_id, full_input, collector.output())
            if kept is not None:
                kept.keep_ws(collector)

    def _in_thread(self, stream, collector) -> None:
        try:
            polled = time.monotonic()
            for batch in stream.batches():
                if batch is None:  # the upstream is silent: is the client still there?
                    self.ws.poll()
                    self._keepalive()
                    polled = time.monotonic()
                    continue
                self.ws.send_texts(_texts(batch, collector))
                now = time.monotonic()
                if now - polled >= self.tick:
                    self.ws.poll()
                    polled = now
        finally:
            stream.close()

    def _in_loop(self, stream, collector) -> bool:
        """The turn carried by the worker's relay loop (one thread for every open
        answer, not a wake-up of this thread per event); False when the stream
        cannot be relayed (nothing was read: the caller relays it here). The loop
        reads the client's frames meanwhile (pings answered, a close seen)."""
        ws = self.ws
        sock = ws.sock
        saved = sock.gettimeout()
        sock.settimeout(None)  # the loop writes with MSG_DONTWAIT; a timeout would wait
        try:
            outcome = self.relay.carry(self._loop_frames(stream, collector), stream, sock,
                                       chunked=False, on_readable=ws.poll)
        finally:
            sock.settimeout(saved)
        if outcome is None:
            return False
        if outcome != DONE:  # gone, or a failure the loop logged: this socket is over
            raise Closed(1006, "the client went away")
        return True

    def _loop_frames(self, stream, collector):
        ws = self.ws
        try:
            for batch in stream.batches():
                if batch is WAITING:
                    yield WAITING
                    continue
                if batch is None:  # the upstream is silent
                    if self._ping_due():
                        yield ws.encode_ping()
                    continue
                yield ws.encode_texts(_texts(batch, collector))
        finally:
            stream.close()

    def _keepalive(self) -> None:
        if self._ping_due():
            self.ws.ping()

    def _ping_due(self) -> bool:
        """Nothing was sent to the client for ``keepalive`` seconds."""
        return self.keepalive > 0 and time.monotonic() - self.ws.last_sent >= self.keepalive


def _texts(batch, collector) -> list[str]:
    """One client frame per event of *batch* (what one upstream read gave: one write),
    the answer's items noted by *collector*."""
    texts = []
    wants = collector.WANTS
    for event in batch:
        kind = event.type
        if kind == ERROR:
            texts.append(dumps_text(ws_frames.error_event_frame(event.data)))
        else:
            texts.append(event.data_text)
        if kind in wants:
            collector.observe(kind, event.data)
    return texts
