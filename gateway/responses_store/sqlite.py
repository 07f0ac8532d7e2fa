"""gateway.responses_store.sqlite
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Stored responses in one SQLite file of the state dir (WAL, 0600), shared by
the workers of one host. Connections are per thread and per process, opened
lazily (a forked worker opens its own).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from ..statefiles import create_private, write_transaction, private_dir
from . import Stored

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, created REAL NOT NULL,
    size INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
CREATE TABLE IF NOT EXISTS response_items (
    owner TEXT NOT NULL, item_id TEXT NOT NULL, response_id TEXT NOT NULL,
    PRIMARY KEY (owner, item_id));
CREATE INDEX IF NOT EXISTS response_items_response ON response_items (response_id);
"""


class SQLiteResponses:
    def __init__(self, path: str | Path, retention: float, max_bytes: int,
                 busy_timeout: float = 5.0):
        self.path = Path(path)
        self.retention = retention
        self.max_bytes = max_bytes
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        # The total is summed (a scan) once this process wrote a 64th of the cap since the
        # last sum, not on every write: the cap may be passed by that much per worker.
        self._check_every = max_bytes / 64
        self._unchecked = self._check_every

    def put(self, stored: Stored, blob: bytes) -> None:
        self.put_batch([(stored, blob)])

    def put_batch(self, batch: list[tuple[Stored, bytes]]) -> None:
        """Several responses in one transaction (one commit for what queued up)."""
        with self._transaction() as conn:
            for stored, blob in batch:
                items = [(stored.owner, item["id"], stored.id) for item in stored.output
                         if isinstance(item, dict) and isinstance(item.get("id"), str)]
                if conn.execute("DELETE FROM responses WHERE id = ?", (stored.id,)).rowcount:
                    conn.execute("DELETE FROM response_items WHERE response_id = ?", (stored.id,))
                conn.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?)",
                             (stored.id, stored.owner, stored.created_at, len(blob), blob))
                conn.executemany("INSERT OR REPLACE INTO response_items VALUES (?, ?, ?)",
                                 items)
                self._unchecked += len(blob)
            if self._unchecked >= self._check_every:
                self._unchecked = 0
                total = conn.execute("SELECT TOTAL(size) FROM responses").fetchone()[0]
                if total > self.max_bytes:
                    self._evict(conn, total - self.max_bytes, batch[-1][0].id)

    def _evict(self, conn, excess: float, keep: str) -> None:
        """The oldest responses out until *excess* bytes are gone (never *keep*)."""
        doomed, freed = [], 0
        for rid, size in conn.execute(
                "SELECT id, size FROM responses WHERE id != ? ORDER BY created", (keep,)):
            doomed.append((rid,))
            freed += size
            if freed >= excess:
                break
        conn.executemany("DELETE FROM response_items WHERE response_id = ?", doomed)
        conn.executemany("DELETE FROM responses WHERE id = ?", doomed)

    def get(self, rid: str, owner: str) -> Stored | None:
        conn = self._conn(create=False)
        if conn is None:
            return None
        row = conn.execute("SELECT id, owner, created, body FROM responses "
                           "WHERE id = ? AND owner = ? AND created >= ?",
                           (rid, owner, time.time() - self.retention)).fetchone()
        return Stored.decode(*row) if row else None

    def find_item(self, item_id: str, owner: str) -> Stored | None:
        conn = self._conn(create=False)
        if conn is None:
            return None
        row = conn.execute("SELECT response_id FROM response_items WHERE owner = ? AND "
                           "item_id = ?", (owner, item_id)).fetchone()
        return self.get(row[0], owner) if row else None

    def delete(self, rid: str, owner: str) -> bool:
        with self._transaction() as conn:
            return self._forget(conn, "id = ? AND owner = ?", (rid, owner)) > 0

    def prune(self, now: float) -> int:
        with self._transaction() as conn:
            return self._forget(conn, "created < ?", (now - self.retention,))

    def purge(self) -> int:
        with self._transaction() as conn:
            return self._forget(conn, "1", ())

    @staticmethod
    def _forget(conn, where: str, params: tuple) -> int:
        conn.execute(f"DELETE FROM response_items WHERE response_id IN "
                     f"(SELECT id FROM responses WHERE {where})", params)
        return conn.execute(f"DELETE FROM responses WHERE {where}", params).rowcount

    def _transaction(self):
        return write_transaction(self._conn())

    def _conn(self, create: bool = True) -> sqlite3.Connection | None:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if not self.path.exists():
                if not create:
                    return None
                private_dir(self.path.parent)
                create_private(self.path)
            local.conn, local.pid = self._open(), os.getpid()
        return local.conn

    def _open(self) -> sqlite3.Connection:
        """A connection in WAL mode with the schema. Several workers opening the file at
        once may find it locked while one of them switches it to WAL (that switch does not
        wait on the busy timeout): they try again for up to the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout,
                                   isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                return conn
            except sqlite3.OperationalError:
                conn.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
