"""gateway.state.sqlite_health
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The SQLite backend's :class:`~.base.HealthStore`: one SQLite file in WAL mode
(readers never wait for the writer) that every worker of one host shares.
Reads are served from a per-process snapshot that is re-read only when SQLite's
``PRAGMA data_version`` says another connection committed since: every worker
sees every other worker's cooldown on its very next request (no staleness
window), while an unchanged store costs one tiny pragma, not a query.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from ..statefiles import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS health (
    id TEXT PRIMARY KEY,
    cooldown_until REAL, reason TEXT, failures INTEGER NOT NULL DEFAULT 0,
    probe_at REAL,
    needs_login INTEGER NOT NULL DEFAULT 0, login_reason TEXT, login_credential TEXT,
    rate_limits TEXT, last_used REAL, last_refresh REAL
);
CREATE TABLE IF NOT EXISTS quota_poll (id TEXT PRIMARY KEY, polled_at REAL NOT NULL);
"""
_COLUMNS = ("id", "cooldown_until", "reason", "failures", "probe_at", "needs_login",
            "login_reason", "login_credential", "rate_limits", "last_used", "last_refresh")


class SQLiteHealth:
    """:class:`~.base.HealthStore` on ``<state_dir>/health.sqlite``.

    One connection and one snapshot per process, shared by its threads under a
    lock (opened lazily, so a worker forked after the master touched the store
    opens its own). A connection per thread cost each new stream thread a
    SQLite connection and a decoded snapshot of its own (``make bench``)."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._snap: tuple | None = None

    # -- reads ---------------------------------------------------------------
    def snapshot(self) -> dict:
        """``{id: row}`` for every account with any health record, as committed
        now. ``data_version`` changes when *another* connection commits; this
        connection's own writes drop the snapshot in :meth:`_write`."""
        with self._lock:
            conn = self._conn()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            snap = self._snap
            if snap is not None and snap[0] == version:
                return snap[1]
            rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM health").fetchall()
            data = {}
            for row in rows:
                item = dict(zip(_COLUMNS, row))
                item["needs_login"] = bool(item["needs_login"])
                item["rate_limits"] = json.loads(item["rate_limits"]) if item["rate_limits"] \
                    else {}
                data[item.pop("id")] = item
            self._snap = (version, data)
            return data

    def state(self, account_id: str) -> dict | None:
        return self.snapshot().get(account_id)

    # -- writes --------------------------------------------------------------
    def set_cooldown(self, account_id: str, until: float, reason: str) -> None:
        """Cool the account until *until*; counts consecutive failures."""
        self._upsert(account_id, {"cooldown_until": until, "reason": reason, "failures": 1,
                                  "probe_at": time.time()}, failures="failures + 1")

    def clear(self, account_id: str, *, login: bool = False, before: float | None = None) -> None:
        """End a cooldown (a success, or a quota that reset early); ``login``
        also lifts ``needs_login`` (after a new login). With ``before`` only a
        cooldown set before that time is ended: a success on a request sent
        earlier says nothing about a limit another worker has just met."""
        if before is not None and not login:
            self._write("UPDATE health SET cooldown_until = NULL, reason = NULL, failures = 0 "
                        "WHERE id = ? AND (probe_at IS NULL OR probe_at <= ?)",
                        (account_id, before))
            return
        values = {"cooldown_until": None, "reason": None, "failures": 0}
        if login:
            values.update(needs_login=0, login_reason=None, login_credential=None)
        self._upsert(account_id, values)

    def claim_probe(self, account_id: str, older_than: float) -> bool:
        """Let exactly one caller (across workers) try a cooling account last
        checked before *older_than*: the only way to notice a quota that reset
        before its announced time."""
        now = time.time()
        cur = self._write("UPDATE health SET probe_at = ? WHERE id = ? AND cooldown_until > ? "
                          "AND (probe_at IS NULL OR probe_at <= ?)",
                          (now, account_id, now, older_than))
        return cur.rowcount == 1

    def mark_needs_login(self, account_id: str, reason: str, credential: str = "") -> None:
        """*credential* is a fingerprint (never the secret) of what failed, so
        the pool can notice new credentials written by something else."""
        self._upsert(account_id, {"needs_login": 1, "login_reason": reason,
                                  "login_credential": credential})

    def record_rate_limits(self, account_id: str, limits: dict, used: bool = True) -> None:
        """Rate-limit headers arrive with a success, so this also stamps last_used
        (``used=False``: windows read from the usage endpoint, not a request)."""
        values = {"rate_limits": json.dumps(limits)}
        if used:
            values["last_used"] = time.time()
        self._upsert(account_id, values)

    def claim_quota_poll(self, account_id: str, older_than: float) -> bool:
        """Let one caller (across workers) ask the usage endpoint for *account_id*
        when nobody did since *older_than*: at most one poll per interval."""
        now = time.time()
        cur = self._write("INSERT INTO quota_poll (id, polled_at) VALUES (?, ?) "
                          "ON CONFLICT(id) DO UPDATE SET polled_at = excluded.polled_at "
                          "WHERE quota_poll.polled_at <= ?", (account_id, now, older_than))
        return cur.rowcount == 1

    def record_used(self, account_id: str) -> None:
        self._upsert(account_id, {"last_used": time.time()})

    def record_refresh(self, account_id: str) -> None:
        self._upsert(account_id, {"last_refresh": time.time()})

    def forget(self, account_id: str) -> None:
        self._write("DELETE FROM health WHERE id = ?", (account_id,))
        self._write("DELETE FROM quota_poll WHERE id = ?", (account_id,))

    # -- plumbing ------------------------------------------------------------
    def _upsert(self, account_id: str, values: dict, **update_exprs: str) -> None:
        """Insert the row or update *values* (a column may use an expression instead)."""
        cols = ["id", *values]
        sets = ", ".join(f"{c} = {update_exprs.get(c, 'excluded.' + c)}" for c in values)
        self._write(f"INSERT INTO health ({', '.join(cols)}) VALUES "
                    f"({', '.join('?' * len(cols))}) ON CONFLICT(id) DO UPDATE SET {sets}",
                    (account_id, *values.values()))

    def _write(self, sql: str, params: tuple):
        with self._lock:
            cur = self._conn().execute(sql, params)  # autocommit: one statement, one commit
            self._snap = None  # own commits do not move this connection's data_version
            return cur

    def _conn(self) -> sqlite3.Connection:
        """The process's connection (call with the lock held)."""
        if self._pid != os.getpid():
            conn = open_sqlite(self.path, _SCHEMA, busy_timeout=10.0)
            self._db, self._pid, self._snap = conn, os.getpid(), None
        return self._db
