"""gateway.usage.store
~~~~~~~~~~~~~~~~~~~~~~
Where usage rows live: a small :class:`UsageStore` protocol, and
:class:`SQLiteUsage`, the embedded default in the state directory.

The protocol is what the writer, ``codex-gateway usage`` and the status page
use, and all a Redis (scale-out) store must implement: add rows, aggregate
them, drop old ones, list recent errors. Every SQLite detail (WAL, file
modes, SQL, connections per thread) stays inside :class:`SQLiteUsage`.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Protocol

from ..statefiles import open_sqlite, write_transaction
from .records import COLUMNS, GROUPS, Aggregate, UsageRow, is_error, ranked_causes


class UsageStore(Protocol):
    def add(self, rows: Iterable[UsageRow]) -> None:
        """Store rows (one batch); raises on failure, the caller counts the loss."""

    def query(self, since: float, by: str, until: float | None = None) -> list[Aggregate]:
        """Rows with ``since <= ts < until`` aggregated by key/account/model/day/hour/total."""

    def prune(self, before: float) -> int:
        """Delete rows older than *before*; returns how many."""

    def recent_errors(self, since: float, limit: int = 20) -> list[UsageRow]:
        """The latest error rows, newest first (for the status page)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    ts REAL NOT NULL, key_id TEXT, account TEXT, dialect TEXT, transport TEXT,
    model_asked TEXT, model_sent TEXT, continuity TEXT, status INTEGER, outcome TEXT,
    error_code TEXT, input_tokens INTEGER, cached_tokens INTEGER, output_tokens INTEGER,
    reasoning_tokens INTEGER, ttfb_ms REAL, duration_ms REAL, error INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
"""
# Columns added after the first release: a database made before gets them on open.
_ADDED_COLUMNS = {"service_tier": "TEXT", "cache_break": "TEXT", "repaired": "INTEGER"}


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
    for name, kind in _ADDED_COLUMNS.items():
        if name not in have:
            with contextlib.suppress(sqlite3.OperationalError):  # another worker was first
                conn.execute(f"ALTER TABLE usage ADD COLUMN {name} {kind}")


_GROUP_SQL = {
    "key": "key_id",
    "account": "account",
    "model": "COALESCE(model_sent, model_asked)",
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
    "hour": "strftime('%Y-%m-%dT%H:00Z', ts, 'unixepoch')",
    "total": "NULL",
}
assert set(_GROUP_SQL) == set(GROUPS)
_INSERT = (f"INSERT INTO usage ({', '.join(COLUMNS)}, error) "
           f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})")


class SQLiteUsage:
    """:class:`UsageStore` on one SQLite file (WAL: the CLI and the status page
    read while workers write; the file, ``-wal`` and ``-shm`` are 0600).

    Connections are per thread and per process, opened lazily, so a worker
    forked after the arbiter touched the store opens its own."""

    def __init__(self, path: str | Path, busy_timeout: float = 5.0):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    # -- writes --------------------------------------------------------------
    def add(self, rows: Iterable[UsageRow]) -> None:
        values = [(*(getattr(r, c) for c in COLUMNS), int(is_error(r.status, r.outcome)))
                  for r in rows]
        if not values:
            return
        with self._transaction() as conn:  # one commit per batch, not per row
            conn.executemany(_INSERT, values)

    def prune(self, before: float) -> int:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM usage WHERE ts < ?", (before,)).rowcount

    # -- reads ---------------------------------------------------------------
    def query(self, since: float, by: str, until: float | None = None) -> list[Aggregate]:
        expr = _GROUP_SQL.get(by)
        if expr is None:
            raise ValueError(f"unknown grouping {by!r}; one of {', '.join(GROUPS)}")
        where, params = "ts >= ?", [since]
        if until is not None:
            where += " AND ts < ?"
            params.append(until)
        conn = self._conn(create=False)
        if conn is None:
            return []
        sums = conn.execute(
            f"SELECT {expr} AS g, COUNT(*), SUM(error), TOTAL(input_tokens), "
            f"TOTAL(cached_tokens), TOTAL(output_tokens), TOTAL(reasoning_tokens), "
            f"COUNT(cache_break), TOTAL(repaired) "
            f"FROM usage WHERE {where} GROUP BY g", params).fetchall()
        causes: dict = {}
        for g, cause, n in conn.execute(
                f"SELECT {expr} AS g, cache_break, COUNT(*) FROM usage "
                f"WHERE {where} AND cache_break IS NOT NULL GROUP BY g, cache_break", params):
            causes.setdefault(g, []).append((cause, n))
        # The median per group in one pass: the middle one (odd) or two (even) by rank.
        medians = dict(conn.execute(
            f"SELECT g, AVG(t) FROM (SELECT {expr} AS g, ttfb_ms AS t, "
            f"ROW_NUMBER() OVER (PARTITION BY {expr} ORDER BY ttfb_ms) AS rn, "
            f"COUNT(*) OVER (PARTITION BY {expr}) AS c FROM usage "
            f"WHERE {where} AND ttfb_ms IS NOT NULL) "
            f"WHERE rn IN ((c + 1) / 2, (c + 2) / 2) GROUP BY g", params).fetchall())
        out = [Aggregate(group=g, requests=n, errors=int(e or 0), input_tokens=int(i),
                         cached_tokens=int(c), output_tokens=int(o), reasoning_tokens=int(r),
                         median_ttfb_ms=medians.get(g), breaks=int(b), repaired=int(fixed),
                         causes=ranked_causes(causes.get(g, ())))
               for g, n, e, i, c, o, r, b, fixed in sums]
        return sorted(out, key=lambda a: (a.group is None, a.group or ""))

    def recent_errors(self, since: float, limit: int = 20) -> list[UsageRow]:
        conn = self._conn(create=False)
        if conn is None:
            return []
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM usage WHERE ts >= ? AND error = 1 "
                            "ORDER BY ts DESC LIMIT ?", (since, limit)).fetchall()
        return [UsageRow(*row) for row in rows]

    # -- plumbing ------------------------------------------------------------
    def _transaction(self):
        return write_transaction(self._conn())

    def _conn(self, create: bool = True) -> sqlite3.Connection | None:
        """This thread's connection. Readers (``create=False``) get None while
        no database exists, instead of creating an empty one."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if not create and not self.path.exists():
                return None
            # WAL with synchronous = NORMAL: a crash loses at most a batch.
            conn = open_sqlite(self.path, _SCHEMA, self.busy_timeout)
            try:
                _add_missing_columns(conn)
            except BaseException:
                conn.close()
                raise
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    def close(self) -> None:
        """Close this thread's connection (a failed one is reopened on next use)."""
        conn = getattr(self._local, "conn", None)
        self._local.pid = None
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass


def open_usage(cfg, state=None) -> UsageStore:
    """The usage store of the configured state backend: the embedded SQLite file,
    or the shared Redis when ``[state] backend = "redis"`` (*state*: an open
    ``gateway.state.Backend``, else one is opened)."""
    if cfg.state.kind != "redis":
        return SQLiteUsage(cfg.usage_path)
    from ..state import open_state
    from .redis_store import RedisUsage

    state = state if state is not None else open_state(cfg)
    return RedisUsage(state.link, cfg.state.key_prefix)
