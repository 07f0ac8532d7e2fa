"""gateway.policy.counters
~~~~~~~~~~~~~~~~~~~~~~~~~~
The counters a key's limits are checked against, shared by every worker:

* the requests of the last minute (a log of start times);
* leases: the answers in flight, each with the tokens it reserved and an
  expiry (``admission.LEASE_SECONDS``) for a worker that died mid-answer;
* tokens charged per window bucket (``d:<day>``, ``w:<monday>``).

:class:`Counters` is the interface; :class:`SQLiteCounters` keeps them in
``<state_dir>/policy.sqlite`` for the workers of one host (each check is one
``BEGIN IMMEDIATE`` transaction, so check-and-record is atomic across
processes); :class:`gateway.policy.redis_counters.RedisCounters` keeps them in
Redis for several instances.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from ..statefiles import open_sqlite, write_transaction
from .admission import DAY, MINUTE, Plan, Seen, refused_by

KEEP_BUCKETS = 9 * DAY  # charged tokens are kept a little longer than a week


class _Forks:
    """How many forks this process is from the one that imported this module: a
    connection is this process's when it was opened at the current count. (Cheaper
    than ``os.getpid()`` per request where system calls are slow.)"""

    count = 0


os.register_at_fork(after_in_child=lambda: setattr(_Forks, "count", _Forks.count + 1))


class Counters(Protocol):
    def admit(self, plan: Plan) -> tuple[str | None, Seen]:
        """Atomically: read the key's counters, and unless a limit refuses
        (``admission.refused_by``) record the request and its lease. Returns the
        refusing limit (None: admitted) and what was seen."""

    def settle(self, key_id: str, lease_id: str, tokens: int, buckets: tuple[str, ...],
               now: float) -> None:
        """The answer ended: end its lease and charge its tokens to *buckets*."""

    def seen(self, key_id: str, buckets: tuple[str, ...], now: float) -> Seen:
        """The key's counters now, for reports (no change)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (key TEXT NOT NULL, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS requests_key_ts ON requests (key, ts);
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, key TEXT NOT NULL,
    until REAL NOT NULL, reserve INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_key ON leases (key);
CREATE TABLE IF NOT EXISTS charged (key TEXT NOT NULL, bucket TEXT NOT NULL,
    tokens INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (key, bucket));
"""


class SQLiteCounters:
    """:class:`Counters` in one SQLite file (WAL, 0600), a connection per thread
    and process."""

    def __init__(self, path: str | Path, busy_timeout: float = 5.0):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def admit(self, plan: Plan) -> tuple[str | None, Seen]:
        with self._transaction() as conn:
            if plan.rpm is not None:
                conn.execute("DELETE FROM requests WHERE key = ? AND ts <= ?",
                             (plan.key_id, plan.now - MINUTE))
            conn.execute("DELETE FROM leases WHERE key = ? AND until <= ?",
                         (plan.key_id, plan.now))
            seen = self._read(conn, plan.key_id, tuple(b.bucket for b in plan.budgets), plan.now)
            refused = refused_by(plan, seen)
            if refused is None:
                if plan.rpm is not None:
                    conn.execute("INSERT INTO requests VALUES (?, ?)", (plan.key_id, plan.now))
                conn.execute("INSERT INTO leases VALUES (?, ?, ?, ?)",
                             (plan.lease_id, plan.key_id, plan.lease_until, plan.reserve))
        return refused, seen

    def settle(self, key_id: str, lease_id: str, tokens: int, buckets: tuple[str, ...],
               now: float) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))
            for bucket in buckets:
                conn.execute("INSERT INTO charged VALUES (?, ?, ?, ?) ON CONFLICT (key, bucket) "
                             "DO UPDATE SET tokens = tokens + excluded.tokens",
                             (key_id, bucket, tokens, now))
            conn.execute("DELETE FROM charged WHERE at < ?", (now - KEEP_BUCKETS,))

    def seen(self, key_id: str, buckets: tuple[str, ...], now: float) -> Seen:
        conn = self._conn(create=False)
        if conn is None:
            return Seen()
        return self._read(conn, key_id, buckets, now)

    @staticmethod
    def _read(conn, key_id: str, buckets: tuple[str, ...], now: float) -> Seen:
        requests, oldest = conn.execute(
            "SELECT COUNT(*), MIN(ts) FROM requests WHERE key = ? AND ts > ?",
            (key_id, now - MINUTE)).fetchone()
        in_flight, reserved = conn.execute(
            "SELECT COUNT(*), TOTAL(reserve) FROM leases WHERE key = ? AND until > ?",
            (key_id, now)).fetchone()
        charged = {}
        if buckets:
            marks = ", ".join("?" * len(buckets))
            charged = dict(conn.execute(
                f"SELECT bucket, tokens FROM charged WHERE key = ? AND bucket IN ({marks})",
                (key_id, *buckets)).fetchall())
        return Seen(requests, oldest, in_flight, int(reserved), charged)

    # -- plumbing (as gateway.usage.store.SQLiteUsage) ---------------------------
    def _transaction(self):
        return write_transaction(self._conn())

    def _conn(self, create: bool = True) -> sqlite3.Connection | None:
        local = self._local
        if getattr(local, "forks", None) != _Forks.count:
            if not create and not self.path.exists():
                return None
            conn = open_sqlite(self.path, _SCHEMA, self.busy_timeout)
            local.conn, local.forks = conn, _Forks.count
        return local.conn


def open_counters(cfg, link=None) -> Counters:
    """The counters of the configured state backend (*link*: an open Redis link)."""
    if cfg.state.kind == "redis":
        from ..state import open_state
        from .redis_counters import RedisCounters

        link = link if link is not None else open_state(cfg).link
        return RedisCounters(link, cfg.state.key_prefix)
    return SQLiteCounters(cfg.state_dir / "policy.sqlite")
