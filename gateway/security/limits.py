"""gateway.security.limits
~~~~~~~~~~~~~~~~~~~~~~~~~~
Default ceilings per client key, counted per worker process (docs/security.md).

A WebSocket holds a worker thread for its whole life, idle or not, so one key
could take every thread of a worker with idle sockets and starve every other
key and ``/healthz``. :class:`Ceilings` bounds, per worker and per client key,
the open WebSockets (``server.max_sockets_per_key``) and the API requests in
progress (``server.max_streams_per_key``; a request ends, so it needs no
reserve), and keeps ``server.reserve_threads`` threads out of reach of any key
that already holds a WebSocket: they are left for other keys, ``/healthz``,
``/metrics`` and ``/status``. Over a ceiling the answer is 429 (this key) or
503 (the worker is full), with ``Retry-After``, before any work.

These are the gateway's own defaults; the per-key policy (budgets, rates,
concurrency set with ``keys create``) stacks on top. Keyless local use counts
as one key (``-``).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from ..errors import GatewayError

SOCKET, STREAM = "socket", "stream"
ENVIRON_KEY = "codex_gateway.slot"


@dataclass(frozen=True)
class Shape:
    """The ceilings of one worker, from ``server.*`` (0: derived from ``threads``)."""

    sockets_per_key: int
    streams_per_key: int
    shared: int  # open WebSockets (every key) before the reserve
    threads: int = 0  # the worker's threads (the reserve is threads - shared)

    @classmethod
    def of(cls, server) -> "Shape":
        threads = server.threads
        shared = max(1, threads - (server.reserve_threads or max(2, threads // 8)))
        return cls(server.max_sockets_per_key or max(1, threads // 4),
                   server.max_streams_per_key or threads, shared, threads)


class Ceilings:
    """Counts held slots per key in this worker; thread-safe."""

    def __init__(self, shape: Shape):
        self.shape = shape
        self._held: dict[tuple[str, str], int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def acquire(self, kind: str, key: str | None) -> "Slot":
        """A slot of *kind* for *key*, or a 429/503 ``GatewayError``."""
        key = key or "-"
        ceiling = self.shape.sockets_per_key if kind == SOCKET else self.shape.streams_per_key
        with self._lock:
            held = self._held.get((kind, key), 0)
            if held >= ceiling:
                raise _over_key(kind, ceiling)
            if kind == SOCKET and self._full_for(key):
                raise GatewayError(503, "This gateway worker is at capacity (every thread "
                                   "not kept in reserve is busy); try again shortly.",
                                   code="server_busy", retry_after=1)
            self._held[(kind, key)] = held + 1
            if kind == SOCKET:
                self._total += 1
        return Slot(self, kind, key)

    def _full_for(self, key: str) -> bool:
        """The reserve: past ``shared`` open WebSockets, a key that already holds one
        is refused and a key that holds none may still open one (other keys are
        served), but the last thread is nobody's (``/healthz``, ``/metrics``,
        ``/status``)."""
        shape = self.shape
        if self._total < shape.shared:
            return False
        if self._total >= max(shape.shared, shape.threads - 1):
            return True
        return bool(self._held.get((SOCKET, key)))

    def _release(self, kind: str, key: str) -> None:
        with self._lock:
            held = self._held.get((kind, key), 0) - 1
            if held > 0:
                self._held[(kind, key)] = held
            else:
                self._held.pop((kind, key), None)
            if kind == SOCKET:
                self._total -= 1

    def held(self, kind: str, key: str | None) -> int:
        with self._lock:
            return self._held.get((kind, key or "-"), 0)


class Slot:
    """One held slot; :meth:`release` is idempotent."""

    __slots__ = ("_ceilings", "_kind", "_key")

    def __init__(self, ceilings: Ceilings, kind: str, key: str):
        self._ceilings, self._kind, self._key = ceilings, kind, key

    def release(self) -> None:
        ceilings, self._ceilings = self._ceilings, None
        if ceilings is not None:
            ceilings._release(self._kind, self._key)


def _over_key(kind: str, ceiling: int) -> GatewayError:
    if kind == SOCKET:
        return GatewayError(429, f"This key already has {ceiling} open WebSockets on this "
                            "gateway worker (server.max_sockets_per_key); close one or use HTTP.",
                            code="too_many_websockets", retry_after=1)
    return GatewayError(429, f"This key already has {ceiling} requests in progress on this "
                        "gateway worker (server.max_streams_per_key); wait for one to finish.",
                        code="too_many_concurrent_requests", retry_after=1)


class Released:
    """WSGI middleware: the request's slot (``environ[ENVIRON_KEY]``, taken when the
    key was checked) is given back when the answer is over: when the server closes
    the answer's iterable, or when the application call ends a WebSocket."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        try:
            result = self.app(environ, start_response)
        except BaseException:
            _release(environ)
            raise
        if environ.get(ENVIRON_KEY) is None:
            return result
        return ClosingBody(result, lambda: _release(environ))


def _release(environ) -> None:
    slot = environ.pop(ENVIRON_KEY, None)
    if slot is not None:
        slot.release()


class ClosingBody:
    """A WSGI answer handed back as it is (its ``__iter__``), with *done* called
    once when the server closes it."""

    __slots__ = ("_result", "_done")

    def __init__(self, result, done):
        self._result = result
        self._done = done

    def __iter__(self):
        return iter(self._result)

    def close(self):
        done, self._done = self._done, None
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            if done is not None:
                done()
