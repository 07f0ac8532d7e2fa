"""gateway.prefix.store
~~~~~~~~~~~~~~~~~~~~~~~~
The per-continuity-key memory of :mod:`gateway.prefix`, shared by every worker.

Per key: one ``turns`` value (the kept fingerprints and the first-seen tool
definitions, replaced each turn) and an ``answers`` log (one entry per
completed answer, appended, the last ``keep`` kept), so keeping an answer
writes that answer only, never the whole history again. Everything expires
``ttl`` seconds after its write, and is bounded: a value larger than
``max_bytes`` is not stored; the SQLite tables keep at most ``max_keys`` keys,
the oldest go first; Redis bounds by the expiry.

:class:`SQLitePrefixStore` is the default (``prefix.sqlite`` in the state
directory, WAL, 0600); :class:`RedisPrefixStore` is used when ``[state]
backend = "redis"``, so several instances see the same conversations. A store
that cannot be reached answers "nothing kept" and drops writes: detection and
repair then do nothing, the request is never failed for it.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from ..statefiles import open_sqlite, write_transaction

log = logging.getLogger("gateway.prefix")

_PRUNE_EVERY = 256  # writes between two prunes of the SQLite tables

# A turn replaces its key's row in place (an upsert into a table clustered on the key);
# an answer is one INSERT, its key's older answers trimmed by a trigger in the same
# statement (:meth:`SQLitePrefixStore._trim`). Files made before this layout keep their
# tables; the indexes nothing reads any more are dropped from them too.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, written REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS turns_written ON turns (written);
CREATE TABLE IF NOT EXISTS answers (
    seq INTEGER PRIMARY KEY, key TEXT NOT NULL, value BLOB NOT NULL, written REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_key ON answers (key, seq);
DROP INDEX IF EXISTS answers_written;
"""
_TRIM = ("CREATE TRIGGER answers_trim AFTER INSERT ON answers BEGIN "
         "DELETE FROM answers WHERE key = NEW.key AND seq <= (SELECT seq FROM answers "
         "WHERE key = NEW.key ORDER BY seq DESC LIMIT 1 OFFSET {keep}); END")
_STORE_ERRORS = (sqlite3.Error, OSError)


class SQLitePrefixStore:
    def __init__(self, path: str | Path, ttl: float, max_keys: int, max_bytes: int,
                 busy_timeout: float = 0.2, clock=time.time):
        self.path = Path(path)
        self.ttl, self.max_keys, self.max_bytes = ttl, max_keys, max_bytes
        self.busy_timeout = busy_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._keep: int | None = None  # the trigger's keep, as this process last made it
        self._writes = 0

    def _conn(self) -> sqlite3.Connection:
        """The process's connection (its threads take turns, under ``_lock``): one
        page cache that this process's own commits leave warm. A connection per
        thread re-read the pages from the file after every other thread's commit:
        under 32 concurrent turns ~4 reads and ~30 GIL hand-overs more per turn
        (``strace -c``, ``python -m bench.compare``)."""
        if self._pid != os.getpid():
            self._db = open_sqlite(self.path, _SCHEMA, self.busy_timeout)
            self._pid, self._keep = os.getpid(), None
        return self._db

    def _run(self, what: str, fn, default=None):
        try:
            with self._lock:
                return fn(self._conn())
        except _STORE_ERRORS as exc:
            log.warning("prefix store: %s failed: %s", what, exc)
            return default

    # -- turns ---------------------------------------------------------------
    def get_turns(self, key: str) -> bytes | None:
        row = self._run("read", lambda c: c.execute(
            "SELECT value FROM turns WHERE key = ? AND written >= ?",
            (key, self.clock() - self.ttl)).fetchone())
        return bytes(row[0]) if row else None

    def put_turns(self, key: str, value: bytes) -> None:
        if len(value) <= self.max_bytes:
            self._run("write", lambda c: c.execute(
                "INSERT INTO turns (key, value, written) VALUES (?, ?, ?) ON CONFLICT (key) "
                "DO UPDATE SET value = excluded.value, written = excluded.written",
                (key, value, self.clock())))
            self._wrote()

    # -- answers -------------------------------------------------------------
    def answers(self, key: str) -> list[bytes]:
        rows = self._run("read", lambda c: c.execute(
            "SELECT value FROM answers WHERE key = ? AND written >= ? ORDER BY seq",
            (key, self.clock() - self.ttl)).fetchall(), [])
        return [bytes(r[0]) for r in rows]

    def add_answer(self, key: str, value: bytes, keep: int) -> None:
        """Append one answer; the key keeps its last *keep*."""
        if len(value) > self.max_bytes:
            return

        def add(c):
            if self._keep != keep:
                self._trim(c, keep)
            # One statement, one commit: the trigger drops the key's answers beyond *keep*
            # (found through the (key, seq) index, not a scan of the key's).
            c.execute("INSERT INTO answers (key, value, written) VALUES (?, ?, ?)",
                      (key, value, self.clock()))
        self._run("write", add)
        self._wrote()

    def _trim(self, conn: sqlite3.Connection, keep: int) -> None:
        """The trigger that keeps a key's last *keep* answers (replaced when another
        *keep* is configured; the workers of one configuration agree)."""
        sql = _TRIM.format(keep=int(keep))
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                           "AND name = 'answers_trim'").fetchone()
        if row is None or row[0] != sql:
            with write_transaction(conn):
                conn.execute("DROP TRIGGER IF EXISTS answers_trim")
                conn.execute(sql)
        self._keep = keep

    # -- bounds --------------------------------------------------------------
    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            self._run("prune", lambda c: self.prune())

    def prune(self) -> None:
        """Drop what expired, then the oldest keys beyond ``max_keys``."""
        conn = self._conn()
        cutoff = self.clock() - self.ttl
        conn.execute("DELETE FROM turns WHERE written < ?", (cutoff,))
        conn.execute("DELETE FROM turns WHERE key NOT IN (SELECT key FROM turns "
                     "ORDER BY written DESC LIMIT ?)", (self.max_keys,))
        conn.execute("DELETE FROM answers WHERE written < ? OR key NOT IN (SELECT key FROM turns)",
                      (cutoff,))


class RedisPrefixStore:
    """The same records in Redis with an expiry: ``<prefix>prefix:turns:<key>`` (a
    string) and ``<prefix>prefix:answers:<key>`` (a list, trimmed to the last ones)."""

    def __init__(self, link, key_prefix: str, ttl: float, max_bytes: int):
        self.link, self.prefix = link, key_prefix + "prefix:"
        self.ttl, self.max_bytes = max(1, int(ttl)), max_bytes

    def _run(self, fn, default=None):
        from ..state.errors import StateUnavailable
        try:
            return self.link.run(fn)
        except StateUnavailable:
            return default

    def get_turns(self, key: str) -> bytes | None:
        return self._run(lambda r: r.get(f"{self.prefix}turns:{key}"))

    def put_turns(self, key: str, value: bytes) -> None:
        if len(value) <= self.max_bytes:
            self._run(lambda r: r.set(f"{self.prefix}turns:{key}", value, ex=self.ttl))

    def answers(self, key: str) -> list[bytes]:
        return self._run(lambda r: r.lrange(f"{self.prefix}answers:{key}", 0, -1), [])

    def add_answer(self, key: str, value: bytes, keep: int) -> None:
        if len(value) > self.max_bytes:
            return
        name = f"{self.prefix}answers:{key}"

        def add(r):
            pipe = r.pipeline(transaction=True)
            pipe.rpush(name, value)
            pipe.ltrim(name, -keep, -1)
            pipe.expire(name, self.ttl)
            pipe.execute()
        self._run(add)


def open_store(cfg, state=None):
    """The store for *cfg*: Redis when the shared state is Redis (*state*: the open
    ``gateway.state.Backend``, whose link it shares), else SQLite."""
    pc = cfg.prefix
    if cfg.state.kind == "redis":
        if state is None or getattr(state, "link", None) is None:
            from ..state import open_state
            state = open_state(cfg)
        return RedisPrefixStore(state.link, cfg.state.key_prefix, pc.ttl_seconds, pc.max_bytes)
    return SQLitePrefixStore(cfg.state_dir / "prefix.sqlite", pc.ttl_seconds, pc.max_keys,
                             pc.max_bytes)
