"""gateway.upstream.ws.pool
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
One worker's idle upstream sockets, by (account, client, continuity key), and
what the backend holds on each (:class:`Conversation`).

Bounded: at most ``websocket_max_sockets`` idle sockets per worker (least
recently used closed first), each closed after ``websocket_idle_seconds``
without a turn; a socket serving a response is its request's alone.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from ...background import weak_loop
from ...errors import TransportError
from .delta import Held, as_held

# A pooled socket that heard nothing from the backend for this long is probed
# (ping, pong within PROBE_WAIT) before a turn is sent on it: a middlebox may
# have dropped it silently. The reaper pings idle sockets every REAP_EVERY.
PROBE_AFTER = 30.0
PROBE_WAIT = 2.0
REAP_EVERY = 15.0


class Conversation:
    """One upstream socket and what the backend holds on it."""

    __slots__ = ("socket", "key", "response_id", "sent", "output", "__weakref__")

    def __init__(self, sock, key: tuple):
        self.socket = sock
        self.key = key
        self.response_id: str | None = None
        self.sent: tuple = ()
        self.output: tuple = ()

    def remember(self, response_id, sent: Sequence[Held], output: Sequence) -> None:
        if isinstance(response_id, str) and response_id:
            self.response_id = response_id
            self.sent = tuple(sent)
            self.output = tuple(as_held(i) for i in output)
        else:
            self.forget()

    def forget(self) -> None:
        self.response_id, self.sent, self.output = None, (), ()


class SocketPool:
    """Idle sockets by key, bounded in number and idle time (per worker).

    A socket is in the pool only while idle: ``checkout`` takes it out for one
    request, ``checkin`` puts it back when the response ended. A reaper thread
    (started with the first idle socket, gone when the pool is empty) closes
    expired sockets and pings the others so they stay open through proxies.
    """

    def __init__(self, max_sockets: int, idle_seconds: float, clock=time.monotonic):
        self.max_sockets = max_sockets
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._idle: OrderedDict[tuple, Conversation] = OrderedDict()
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._idle)

    def checkout(self, key: tuple) -> Conversation | None:
        """The idle socket for *key*, still open (probed if it was silent long), or None."""
        self.sweep()
        with self._lock:
            conv = self._idle.pop(key, None)
        if conv is None:
            return None
        sock = conv.socket
        if sock.closed or not sock.alive():
            sock.abort()
            return None
        if self.clock() - sock.last_heard > PROBE_AFTER \
                and not sock.probe(PROBE_WAIT):
            sock.abort()
            return None
        return conv

    def checkin(self, conv: Conversation) -> None:
        """Keep *conv* for its key's next turn (the newest socket of a key wins)."""
        if conv.socket.closed:
            return
        conv.socket.last_used = self.clock()
        closing = []
        with self._lock:
            old = self._idle.pop(conv.key, None)
            if old is not None and old is not conv:
                closing.append(old)
            self._idle[conv.key] = conv
            while len(self._idle) > self.max_sockets:
                closing.append(self._idle.popitem(last=False)[1])
            start = self._reaper is None or not self._reaper.is_alive()
        for c in closing:
            c.socket.close()
        if start:
            self._start_reaper()

    def sweep(self) -> int:
        """Close sockets idle for longer than ``idle_seconds``; how many."""
        limit = self.clock() - self.idle_seconds
        closing = []
        with self._lock:
            while self._idle:
                key, conv = next(iter(self._idle.items()))
                if conv.socket.last_used > limit:
                    break
                closing.append(self._idle.pop(key))
        for c in closing:
            c.socket.close(1001)
        return len(closing)

    def keepalive(self) -> None:
        """Ping idle sockets that were silent for a while; drop the dead ones."""
        now = self.clock()
        dead = []
        with self._lock:
            for key, conv in list(self._idle.items()):
                sock = conv.socket
                if not sock.alive():
                    dead.append(self._idle.pop(key))
                elif now - sock.last_heard >= REAP_EVERY:
                    try:
                        sock.ping()
                    except TransportError:
                        dead.append(self._idle.pop(key))
        for c in dead:
            c.socket.abort()

    def close_all(self) -> None:
        with self._lock:
            convs = list(self._idle.values())
            self._idle.clear()
        for c in convs:
            c.socket.close(1001)

    def _start_reaper(self) -> None:
        period = max(0.05, min(REAP_EVERY, self.idle_seconds / 2))

        def reap(pool: SocketPool) -> bool:
            pool.sweep()
            pool.keepalive()
            with pool._lock:
                if not pool._idle:
                    pool._reaper = None
                    return False  # nothing left to reap: the next checkin starts one
            return True

        thread = weak_loop(self, period, reap, "upstream-ws-reaper")
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper = thread
        thread.start()
