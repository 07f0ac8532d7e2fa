"""gateway.usage.writer
~~~~~~~~~~~~~~~~~~~~~~~
Usage rows written off the hot path: a bounded queue per worker, filled by a
request-record sink and emptied in batches by one background thread.

The sink is the only part on a request's path and it never waits: it appends
the finished record to a deque (a GIL-atomic operation, no lock, no I/O, not
even the conversion to a row, which the writer thread does). When the queue
is full the record is dropped and counted, never queued behind a slow disk.
What could not be stored (a full queue, a store that cannot be written) is
counted per reason (``dropped``, and the ``on_drop`` hook that feeds the
Prometheus counter) and logged once per outage, with one more line when it
ends, so a read-only disk costs one log line, not one per request; requests
keep being served.

The same thread prunes rows older than the retention now and then, and runs
small periodic jobs for others (the quota poller's check), so a worker has
one background thread for all of it.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from .records import row_from_record

log = logging.getLogger("gateway.usage")

PRUNE_EVERY = 3600.0  # seconds between retention passes (and one at start)


class UsageWriter:
    """Per-worker queue + background writer thread for one :class:`UsageStore`."""

    def __init__(self, store, *, queue_size: int = 10000, batch_size: int = 500,
                 flush_seconds: float = 0.5, retention_days: float = 90,
                 prune_every: float = PRUNE_EVERY,
                 on_drop: Callable[[str, int], None] | None = None,
                 on_written: Callable[[int], None] | None = None,
                 clock: Callable[[], float] = time.time, where: str = ""):
        self.store = store
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.retention = retention_days * 86400.0
        self.prune_every = prune_every
        self.on_drop = on_drop
        self.on_written = on_written
        self.clock = clock
        self.where = where or str(getattr(store, "path", "the usage store"))
        self.dropped = {"queue_full": 0, "store_error": 0}
        self.written = 0
        self._queue: deque = deque()
        self._periodic: list[list] = []  # [interval, fn, next_due]
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._next_prune = 0.0
        self._store_down = False   # inside a store outage (logged once)
        self._lost_in_outage = 0
        self._queue_full = False   # inside a queue-full episode (logged once)

    # -- the hot path --------------------------------------------------------
    def sink(self, record) -> None:
        """A RequestRecord sink: queue the finished record, or drop and count it."""
        queue = self._queue
        if len(queue) >= self.queue_size:
            self._drop("queue_full", 1)
            if not self._queue_full:
                self._note_full()
            return
        queue.append(record)
        if self._pid != os.getpid():
            self._start()
        elif len(queue) == self.batch_size:
            self._wake.set()  # a full batch: write it now rather than at the next tick

    def _note_full(self) -> None:
        with self._log_lock:  # once per episode, whichever request thread sees it first
            if not self._queue_full:
                self._queue_full = True
                log.warning("usage queue full (%d rows waiting for %s): new usage rows are "
                            "dropped and counted (codex_gateway_usage_rows_dropped_total); "
                            "requests are still served", self.queue_size, self.where)

    # -- periodic jobs -------------------------------------------------------
    def every(self, seconds: float, fn: Callable[[], None], first: float = 0.0) -> None:
        """Run *fn* on the writer thread every *seconds* (first after *first* s)."""
        self._periodic.append([seconds, fn, time.monotonic() + first])

    # -- the writer thread ---------------------------------------------------
    def _start(self) -> None:
        with self._flush_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
            self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
                self._maintain()
            except Exception:  # noqa: BLE001 - the thread must outlive any bug
                log.exception("usage writer: unexpected error")

    def flush(self) -> int:
        """Write every queued row now (the writer thread, tests, shutdown)."""
        written = 0
        with self._flush_lock:
            queue = self._queue
            while queue:
                batch = []
                while queue and len(batch) < self.batch_size:
                    record = queue.popleft()
                    try:
                        batch.append(row_from_record(record))
                    except Exception:  # noqa: BLE001 - one odd record must not stop the rest
                        log.exception("usage writer: record could not be converted")
                        self._drop("store_error", 1)
                if batch and self._write(batch):
                    written += len(batch)
            if self._queue_full and not queue:
                self._queue_full = False
                log.warning("usage queue drained: usage rows are stored again")
        return written

    def _write(self, batch: list) -> bool:
        try:
            self.store.add(batch)
        except Exception as exc:  # noqa: BLE001 - sqlite3.Error, OSError, a Redis error later
            close = getattr(self.store, "close", None)
            if close is not None:
                close()  # reopen on the next batch: the disk may come back
            # Said before counted: whoever sees the count sees the log line too.
            if not self._store_down:
                self._store_down = True
                if not getattr(exc, "shared_outage", False):  # else its store logs it
                    log.error("usage store %s cannot be written (%s): usage rows are dropped "
                              "and counted (codex_gateway_usage_rows_dropped_total); requests "
                              "are still served", self.where, _reason(exc))
            self._lost_in_outage += len(batch)
            self._drop("store_error", len(batch))
            return False
        if self._store_down:
            self._store_down = False
            log.warning("usage store %s is writable again; %d usage rows were lost",
                        self.where, self._lost_in_outage)
            self._lost_in_outage = 0
        self.written += len(batch)
        if self.on_written is not None:
            self.on_written(len(batch))
        return True

    def _maintain(self) -> None:
        now = time.monotonic()
        if now >= self._next_prune and not self._store_down:
            self._next_prune = now + self.prune_every
            try:
                self.store.prune(self.clock() - self.retention)
            except Exception as exc:  # noqa: BLE001 - retried at the next pass
                log.debug("usage prune failed: %s", _reason(exc))
        for job in self._periodic:
            if now >= job[2]:
                job[2] = now + job[0]
                try:
                    job[1]()
                except Exception:  # noqa: BLE001
                    log.exception("usage writer: periodic job failed")

    def _drop(self, reason: str, n: int) -> None:
        self.dropped[reason] += n
        if self.on_drop is not None:
            try:
                self.on_drop(reason, n)
            except Exception:  # noqa: BLE001 - counting must never fail a request
                pass

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and write what is left (at exit, or a test's teardown)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - at exit, nothing more can be done
            pass

    @property
    def pending(self) -> int:
        return len(self._queue)


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason (no SQL, no row values)."""
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:200]
