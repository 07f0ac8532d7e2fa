"""gateway.upstream.ws.pool
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
One worker's idle upstream sockets, by (account, client, continuity key), and
what the backend holds on each (:class:`Conversation`).

Bounded: at most ``websocket_max_sockets`` idle sockets per worker (least
recently used closed first), each closed after ``websocket_idle_seconds``
without a turn; a socket serving a response is its request's alone. A key keeps
as many idle sockets as its conversation used at once.
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
    request, ``checkin`` puts it back when the response ended. A key may have
    several idle sockets: turns of one conversation that ran at once each had
    one, and each stays for the next turns (the most recently used is taken
    first: it most likely holds the conversation's last response). A reaper
    thread (started with the first idle socket, gone when the pool is empty)
    closes expired sockets and pings the others so they stay open through
    proxies.
    """

    def __init__(self, max_sockets: int, idle_seconds: float, clock=time.monotonic):
        self.max_sockets = max_sockets
        self.idle_seconds = idle_seconds
        self.clock = clock
        # Every idle socket, least recently used first; and each key's, newest last.
        self._idle: OrderedDict[Conversation, tuple] = OrderedDict()
        self._by_key: dict[tuple, list[Conversation]] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._idle)

    def idle(self, key: tuple) -> int:
        """How many idle sockets *key* has."""
        with self._lock:
            return len(self._by_key.get(key, ()))

    def _take(self, conv: Conversation) -> None:
        """Remove *conv* from both indexes (the lock held)."""
        self._idle.pop(conv, None)
        convs = self._by_key.get(conv.key)
        if convs is not None:
            try:
                convs.remove(conv)
            except ValueError:
                pass
            if not convs:
                del self._by_key[conv.key]

    def checkout(self, key: tuple) -> Conversation | None:
        """An idle socket for *key*, still open (probed if it was silent long), or None."""
        self.sweep()
        while True:
            with self._lock:
                convs = self._by_key.get(key)
                if not convs:
                    return None
                conv = convs[-1]
                self._take(conv)
            sock = conv.socket
            if sock.closed or not sock.alive():
                sock.abort()
                continue
            if self.clock() - sock.last_heard > PROBE_AFTER \
                    and not sock.probe(PROBE_WAIT):
                sock.abort()
                continue
            return conv

    def checkin(self, conv: Conversation) -> None:
        """Keep *conv* for its key's next turns (beside the key's other idle sockets)."""
        if conv.socket.closed:
            return
        conv.socket.last_used = self.clock()
        closing = []
        with self._lock:
            self._take(conv)
            self._idle[conv] = conv.key
            self._by_key.setdefault(conv.key, []).append(conv)
            while len(self._idle) > self.max_sockets:
                oldest = next(iter(self._idle))
                self._take(oldest)
                closing.append(oldest)
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
                conv = next(iter(self._idle))
                if conv.socket.last_used > limit:
                    break
                self._take(conv)
                closing.append(conv)
        for c in closing:
            c.socket.close(1001)
        return len(closing)

    def keepalive(self) -> None:
        """Ping idle sockets that were silent for a while; drop the dead ones."""
        now = self.clock()
        dead = []
        with self._lock:
            for conv in list(self._idle):
                sock = conv.socket
                if not sock.alive():
                    dead.append(conv)
                elif now - sock.last_heard >= REAP_EVERY:
                    try:
                        sock.ping()
                    except TransportError:
                        dead.append(conv)
            for conv in dead:
                self._take(conv)
        for c in dead:
            c.socket.abort()

    def close_all(self) -> None:
        with self._lock:
            convs = list(self._idle)
            self._idle.clear()
            self._by_key.clear()
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
