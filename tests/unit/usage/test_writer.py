"""The usage writer: a sink that never blocks, batches, and counts what it could not store."""
from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest

from gateway.record import Outcome, RequestRecord
from gateway.usage.writer import UsageWriter


def record(key="key-a") -> RequestRecord:
    rec = RequestRecord(dialect="responses", key_id=key)
    rec.finish(200, Outcome.COMPLETED)
    return rec


class ListStore:
    def __init__(self):
        self.batches, self.pruned, self.fail, self.block = [], [], False, None

    def add(self, rows):
        if self.block is not None:
            self.block.wait(10)
        if self.fail:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        self.batches.append(list(rows))

    def prune(self, before):
        self.pruned.append(before)
        return 0


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.fixture
def made():
    writers = []
    yield writers
    for w in writers:
        w.close(1)


def make(made, store, **kw) -> UsageWriter:
    w = UsageWriter(store, flush_seconds=kw.pop("flush_seconds", 0.05), **kw)
    made.append(w)
    return w


def test_rows_are_written_in_batches_by_the_background_thread(made):
    store = ListStore()
    w = make(made, store, batch_size=3)
    for _ in range(7):
        w.sink(record())
    assert wait_for(lambda: sum(map(len, store.batches)) == 7)
    assert max(map(len, store.batches)) <= 3
    assert all(r.key_id == "key-a" and r.status == 200 for b in store.batches for r in b)
    assert w.written == 7 and w.dropped == {"queue_full": 0, "store_error": 0}


def test_a_full_queue_drops_counts_and_logs_once(made, caplog):
    store = ListStore()
    store.block = threading.Event()  # the store hangs: the queue fills up
    drops = []
    w = make(made, store, queue_size=5, batch_size=1, on_drop=lambda r, n: drops.append((r, n)))
    caplog.set_level(logging.WARNING, "gateway.usage")
    started = time.monotonic()
    for _ in range(50):
        w.sink(record())
    assert time.monotonic() - started < 0.5  # never waits for the store
    assert w.dropped["queue_full"] >= 40 and sum(n for _, n in drops) == w.dropped["queue_full"]
    assert sum("queue full" in r.message for r in caplog.records) == 1
    store.block.set()
    assert wait_for(lambda: w.pending == 0)
    assert wait_for(lambda: any("drained" in r.message for r in caplog.records))


def test_a_store_that_cannot_be_written_is_counted_and_logged_once_per_outage(made, caplog):
    store = ListStore()
    store.fail = True
    w = make(made, store, batch_size=2)
    caplog.set_level(logging.INFO, "gateway.usage")
    for _ in range(6):
        w.sink(record())
        time.sleep(0.02)
    assert wait_for(lambda: w.dropped["store_error"] == 6)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "cannot be written" in errors[0].message
    assert "readonly" in errors[0].message and "requests are still served" in errors[0].message
    store.fail = False
    w.sink(record())
    assert wait_for(lambda: w.written == 1)
    assert any("writable again; 6 usage rows were lost" in r.message for r in caplog.records)
    store.fail = True  # a new outage is logged again
    w.sink(record())
    assert wait_for(lambda: w.dropped["store_error"] == 7)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2


def test_retention_prunes_at_start_and_periodic_jobs_run(made):
    store = ListStore()
    ticks = []
    w = make(made, store, retention_days=90, clock=lambda: 100 * 86400.0)
    w.every(0.05, lambda: ticks.append(1))
    w.sink(record())
    assert wait_for(lambda: store.pruned and len(ticks) >= 2)
    assert store.pruned[0] == 10 * 86400.0


def test_close_writes_what_is_left(made):
    store = ListStore()
    w = make(made, store, flush_seconds=60)
    for _ in range(3):
        w.sink(record())
    w.close()
    assert sum(map(len, store.batches)) == 3


def test_a_bad_record_is_dropped_and_the_rest_written(made):
    store = ListStore()
    w = make(made, store, flush_seconds=60)
    w.sink(object())  # not a record
    w.sink(record())
    w.flush()
    assert sum(map(len, store.batches)) == 1 and w.dropped["store_error"] == 1
