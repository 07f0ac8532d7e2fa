"""The state directory is 0700 and every file in it 0600, whatever the umask; its
SQLite files open in WAL mode even when several processes create one at once."""
from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from gateway import statefiles
from gateway.auth import ClientKeys, add_key
from gateway.state.files import FileStore
from gateway.state.records import openai_record
from gateway.state.sqlite_health import SQLiteHealth


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask():
    """The most common umask: without care, files would be 0644 and directories 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_everything_the_gateway_writes_is_private(tmp_path, loose_umask):
    state = tmp_path / "home" / ".local" / "state" / "codex-gateway"
    store = FileStore(state)
    store.save(openai_record("sk-test-0123456789", label="api"))
    with store.lock("openai-api"):
        pass
    health = SQLiteHealth(state / "health.sqlite")
    health.record_used("openai-api")  # WAL mode: -wal and -shm exist while connected
    add_key(state / "client_keys", "laptop", "k")
    ClientKeys((), state / "client_keys").check("Bearer k")

    found = {p.relative_to(state).as_posix(): mode(p) for p in state.rglob("*")}
    assert {"health.sqlite-wal", "health.sqlite-shm", "locks/openai-api.lock",
            "accounts/openai-api.json", "client_keys"} <= set(found)
    assert mode(state) == 0o700
    loose = {p: m for p, m in found.items()
             if m != (0o700 if (state / p).is_dir() else 0o600)}
    assert not loose, loose
    # The user's own parents keep the usual mode: they are not the gateway's.
    assert mode(state.parent) == 0o755


def test_a_migrated_keys_file_is_private(tmp_path, loose_umask):
    f = tmp_path / "client_keys"
    f.write_text("laptop plain\n")
    assert mode(f) == 0o644
    ClientKeys((), f).check("Bearer plain")
    assert mode(f) == 0o600


def test_private_dir_leaves_an_existing_directory_alone(tmp_path, loose_umask):
    d = tmp_path / "operator-made"
    d.mkdir(mode=0o750)
    assert statefiles.private_dir(d) == d and mode(d) == 0o750


def test_create_private_keeps_an_existing_file(tmp_path):
    f = tmp_path / "db"
    f.write_bytes(b"data")
    statefiles.create_private(f)
    assert f.read_bytes() == b"data"


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path, loose_umask):
    f = tmp_path / "x"
    f.write_text("old")
    os.chmod(f, 0o644)
    statefiles.atomic_write(f, "new")
    assert f.read_bytes() == b"new" and mode(f) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    f = tmp_path / "x"
    f.write_text("old")

    def half(fh):
        fh.write("ne")
        raise OSError("disk full")

    with pytest.raises(OSError):
        statefiles.atomic_write(f, half)
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x"]


class _LosesTheWalSwitch:
    """A connection whose first *n* switches into WAL lose to another process's,
    as SQLite reports it: "database is locked" at once, no busy wait."""

    def __init__(self, conn, n):
        self.conn, self.left = conn, n

    def execute(self, sql, *args):
        if sql.startswith("PRAGMA journal_mode") and self.left:
            self.left -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_a_new_sqlite_file_opened_by_several_processes_at_once(tmp_path, monkeypatch):
    """Workers that open a new health or usage file together: the loser of the
    switch into WAL retries instead of failing its first request."""
    real, opened = sqlite3.connect, []

    def connect(*args, **kwargs):
        opened.append(_LosesTheWalSwitch(real(*args, **kwargs), 3))
        return opened[-1]

    monkeypatch.setattr(statefiles.sqlite3, "connect", connect)
    conn = statefiles.open_sqlite(tmp_path / "h.sqlite", "CREATE TABLE t (a);", 5.0)
    assert opened[0].left == 0 and conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.OperationalError, match="syntax"):  # other errors: at once
        statefiles.open_sqlite(tmp_path / "b.sqlite", "NOT SQL;", 5.0)
