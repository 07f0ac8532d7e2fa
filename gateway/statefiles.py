"""gateway.statefiles
~~~~~~~~~~~~~~~~~~~~~
Files in the state directory: private to the service user from the moment
they exist.

The state directory holds refresh tokens, API keys and client key hashes, so
it is 0700 and every file in it 0600, whatever the umask. Modes are set when
a file or directory is created (``os.open``/``mkdir`` with the mode, never a
``chmod`` afterwards, which would leave a window); a directory the operator
made is left as they made it (systemd's ``StateDirectoryMode=0700`` does so).
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create *path* (0700) if it is missing; its parents are the user's own
    (``~/.local/state``) and get the usual mode."""
    path = Path(path)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=DIR_MODE)
    return path


def create_private(path: str | Path) -> None:
    """Create *path* empty (0600) if it does not exist. For files another library
    creates with its own mode: SQLite gives ``-wal`` and ``-shm`` the mode of
    the database file, so a database created here keeps all three private."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))


def atomic_write(path: str | Path, fill: str | Callable[[TextIO], object]) -> None:
    """Replace *path* (0600) with *fill* (the text, or a function that writes it
    to the open file): temp file in the same directory, fsync, ``os.replace``,
    so a concurrent reader sees the old or the new file, never half of one."""
    path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as fh:
            if isinstance(fill, str):
                fh.write(fill)
            else:
                fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def write_transaction(conn):
    """One SQLite write transaction on *conn* (autocommit mode): the write lock
    taken at once (``BEGIN IMMEDIATE``; its busy timeout waits for it), rolled
    back on any error, committed otherwise."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_sqlite(path: str | Path, schema: str, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the private SQLite file *path* in WAL mode, *schema* applied.

    Several processes open a new file at once (gunicorn's workers, the first
    request after a start): SQLite answers the loser of the switch into WAL
    with "database is locked" at once instead of waiting in its busy handler
    (it would be a deadlock between two lock upgrades), so the setup is retried
    until *busy_timeout*. Once one connection switched, the file stays WAL.
    """
    path = Path(path)
    private_dir(path.parent)
    create_private(path)  # 0600; SQLite gives -wal and -shm the same mode
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False)
    deadline = time.monotonic() + busy_timeout
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable enough for state
                conn.executescript(schema)
                return conn
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    except BaseException:
        conn.close()
        raise
