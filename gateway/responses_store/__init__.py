"""gateway.responses_store
~~~~~~~~~~~~~~~~~~~~~~~~~~
The responses the gateway keeps because the Codex backend keeps none
(``store`` must be false there): what ``previous_response_id``,
``item_reference`` and ``GET /v1/responses/{id}`` need.

A stored response (:class:`Stored`) is the full input that led to it, how many
of those items the request itself carried, and the response object as the
client saw it (output items with reasoning's ``encrypted_content``, usage,
the request fields it reports), owned by the client key that made it: any
other key is told it does not exist.

Two backends with one small interface (:class:`Backend`), chosen by
``[state] backend``: :mod:`.sqlite` (``<state_dir>/responses.sqlite``) and
:mod:`.redis` (the shared Redis, so every worker and instance sees one
store). Both drop responses older than ``responses.retention_days`` and the
oldest ones beyond ``responses.max_bytes``.

:class:`Keeper` is what the endpoints use. ``keep`` never waits: the response
goes on a queue that one background thread per process writes, and is
readable by this process at once. A response written by another worker a
moment ago may not be there yet when its next turn arrives: a miss is read
again for up to ``MISS_WAIT`` seconds before it is believed.
"""
from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from ..jsonio import dumps, loads
from ..state.errors import StateUnavailable

__all__ = ["Backend", "Keeper", "Stored", "StateUnavailable", "open_keeper"]

log = logging.getLogger("gateway.responses")

MISS_WAIT = 0.5    # seconds a miss is read again (another worker's write in flight)
MISS_STEP = 0.05
PRUNE_EVERY = 300.0  # seconds between retention passes of the writer thread
COLLECT = 0.05       # seconds the writer collects answers before it writes them
BATCH = 64           # responses written in one transaction, at most


@dataclass
class Stored:
    """One kept response."""

    id: str
    owner: str          # the client key id ("" when the gateway has no keys)
    created_at: float
    input: list         # the full input that led to it (previous turns expanded)
    own_input: int      # how many of the last ``input`` items the request itself sent
    response: dict      # the response object as the client saw it

    def encode(self) -> bytes:
        return dumps({"input": self.input, "own_input": self.own_input,
                      "response": self.response})

    @classmethod
    def decode(cls, rid: str, owner: str, created_at: float, blob: bytes | str) -> "Stored":
        data = loads(blob)
        return cls(rid, owner, created_at, data["input"], data["own_input"], data["response"])

    @property
    def output(self) -> list:
        out = self.response.get("output")
        return out if isinstance(out, list) else []

    def item(self, item_id: str) -> dict | None:
        """The output item with this id (what an ``item_reference`` names)."""
        for item in self.output:
            if isinstance(item, dict) and item.get("id") == item_id:
                return item
        return None


class Backend(Protocol):
    def put(self, stored: Stored, blob: bytes) -> None:
        """Keep it (replacing one with its id), then evict what retention and the size cap
        say; raises StateUnavailable or an OSError/sqlite3 error on failure."""

    def put_batch(self, batch: list[tuple[Stored, bytes]]) -> None:
        """``put`` for each pair, at once where the backend can (one transaction)."""

    def get(self, rid: str, owner: str) -> Stored | None:
        """The response if it exists, is fresh and is *owner*'s; raises StateUnavailable."""

    def find_item(self, item_id: str, owner: str) -> Stored | None:
        """The response of *owner* whose output holds the item *item_id*."""

    def delete(self, rid: str, owner: str) -> bool:
        """Remove *owner*'s response; False when there was none."""

    def prune(self, now: float) -> int:
        """Drop responses past retention; returns how many."""

    def purge(self) -> int:
        """Drop every stored response; returns how many."""


class Keeper:
    """The store as the endpoints see it: queued writes, read-your-writes reads."""

    def __init__(self, backend: Backend, *, queue_size: int = 1000,
                 miss_wait: float = MISS_WAIT, where: str = ""):
        self.backend = backend
        self.queue_size = queue_size
        self.miss_wait = miss_wait
        self.where = where or type(backend).__name__
        self.written = self.dropped = 0
        self.bytes_written = 0
        self._queue: deque = deque()
        self._pending: dict[str, Stored] = {}  # queued, not yet written (this process)
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._failing = False
        self._next_prune = 0.0

    # -- writes (never wait) -------------------------------------------------
    def keep(self, stored: Stored) -> None:
        if len(self._queue) >= self.queue_size:
            self.dropped += 1
            return
        self._pending[stored.id] = stored
        self._queue.append(stored)
        self._ensure_thread()
        if not self._wake.is_set():  # set already: the writer is collecting, no second wake
            self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued response is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue or self._pending:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.005)
        return True

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=_writer, args=(weakref.ref(self),),
                                            name="responses-store", daemon=True)
            self._thread.start()
            # A worker that stops (a restart, a reload) first writes what it answered:
            # the writer may be collecting (COLLECT) when the stop comes.
            atexit.register(_flush_at_exit, weakref.ref(self))

    def _drain(self) -> None:
        """Write what is queued (in batches), and prune now and then (the writer thread)."""
        while self._queue:
            batch = list(self._queue)[:BATCH]
            self._write(batch)
            for stored in batch:
                self._queue.popleft()
                if self._pending.get(stored.id) is stored:
                    del self._pending[stored.id]
        now = time.time()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            try:
                self.backend.prune(now)
            except Exception:  # noqa: BLE001 - the next pass tries again
                pass

    def _write(self, batch: list[Stored]) -> None:
        try:
            pairs = [(stored, stored.encode()) for stored in batch]
            self.backend.put_batch(pairs)
        except Exception as exc:  # noqa: BLE001 - a lost write is counted, never raised
            self.dropped += len(batch)
            if isinstance(exc, StateUnavailable):
                self._failing = True  # the state link logs a Redis outage once per instance
            elif not self._failing:
                self._failing = True
                log.warning("response store %s cannot be written (%s: %s); responses are not "
                            "kept until it can (one line per outage)", self.where,
                            exc.__class__.__name__, str(exc)[:200])
            return
        if self._failing:
            self._failing = False
            log.info("response store %s is written again", self.where)
        self.written += len(pairs)
        self.bytes_written += sum(len(blob) for _, blob in pairs)

    # -- reads ---------------------------------------------------------------
    def get(self, rid: str, owner: str) -> Stored | None:
        """*owner*'s response *rid*, or None; raises StateUnavailable."""
        return self._read(lambda: self._mine(self._pending.get(rid), owner)
                          or self.backend.get(rid, owner))

    def find_item(self, item_id: str, owner: str) -> dict | None:
        """The output item *item_id* of one of *owner*'s responses, or None."""
        def look():
            for stored in list(self._pending.values()):
                if stored.owner == owner and stored.item(item_id) is not None:
                    return stored
            return self.backend.find_item(item_id, owner)
        stored = self._read(look)
        return stored.item(item_id) if stored is not None else None

    def delete(self, rid: str, owner: str) -> bool:
        pending = self._mine(self._pending.get(rid), owner)
        if pending is not None:
            self.flush()
        return _unavailable_on_error(lambda: self.backend.delete(rid, owner))

    def _read(self, look):
        found = _unavailable_on_error(look)
        deadline = time.monotonic() + self.miss_wait
        while found is None and time.monotonic() < deadline:
            time.sleep(MISS_STEP)
            found = _unavailable_on_error(look)
        return found

    @staticmethod
    def _mine(stored: Stored | None, owner: str) -> Stored | None:
        return stored if stored is not None and stored.owner == owner else None


def _flush_at_exit(ref) -> None:
    keeper = ref()
    if keeper is not None and keeper._pid == os.getpid():
        keeper.flush()


def _writer(ref) -> None:
    """The writer thread: holds its keeper only while it works, so a keeper nobody uses
    any more (an app a test dropped) is freed, and the thread ends with it."""
    while True:
        keeper = ref()
        if keeper is None:
            return
        wake = keeper._wake
        del keeper
        if wake.wait(1.0):
            # Answers that end meanwhile join this one's transaction: waking the writer
            # and committing for every answer cost more than storing it (``make bench``).
            # Another worker reading one of them meanwhile waits for it (MISS_WAIT).
            time.sleep(COLLECT)
        wake.clear()
        keeper = ref()
        if keeper is None:
            return
        keeper._drain()
        del keeper


def _unavailable_on_error(fn):
    """*fn()*, a backend failure of any kind (a locked or unreadable SQLite file) raised as
    StateUnavailable: the client is told the store cannot answer, never a 500."""
    try:
        return fn()
    except StateUnavailable:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise StateUnavailable(f"the response store cannot be read ({exc.__class__.__name__})") \
            from None


def open_keeper(cfg, state_backend=None) -> Keeper | None:
    """The configured store, or None when ``responses.store`` is off. Redis mode
    shares the account pool's Redis link (*state_backend*) when it has one."""
    rc = cfg.responses
    if not rc.store:
        return None
    retention = rc.retention_days * 86400.0
    link = getattr(state_backend, "link", None)
    if cfg.state.kind == "redis":
        from .redis import RedisResponses  # the redis package only in Redis mode
        if link is None:
            from ..state.link import Link
            link = Link(cfg.state.redis_url, cfg.state.timeout_seconds)
        backend = RedisResponses(link, cfg.state.key_prefix, retention, rc.max_bytes)
        return Keeper(backend, queue_size=rc.queue_size, where=f"Redis at {link.where}")
    from .sqlite import SQLiteResponses
    path = cfg.responses_path
    return Keeper(SQLiteResponses(path, retention, rc.max_bytes), queue_size=rc.queue_size,
                  where=str(path))
