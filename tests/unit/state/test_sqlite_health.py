"""Shared health in SQLite: visible to every process, cheap to read."""
from __future__ import annotations

import sqlite3
import time

from gateway.state.sqlite_health import SQLiteHealth
from tests.support import in_child


def _until(health, account_id):
    """The cooldown still running for *account_id*, as the pool reads it."""
    row = health.state(account_id)
    until = row and row["cooldown_until"]
    return until if until and until > time.time() else None


def _read_in_child(path, account_id, queue):
    h = SQLiteHealth(path)
    queue.put((_until(h, account_id), h.state(account_id)))


def _from_another_process(path, account_id):
    return in_child(_read_in_child, str(path), account_id)


def test_cooldown_is_shared_across_processes(tmp_path):
    path = tmp_path / "health.sqlite"
    h = SQLiteHealth(path)
    until = time.time() + 3600
    h.set_cooldown("codex-a", until, "usage_limit_reached")
    seen, row = _from_another_process(path, "codex-a")
    assert seen == until and row["reason"] == "usage_limit_reached" and row["failures"] == 1
    h.clear("codex-a")
    assert _from_another_process(path, "codex-a")[0] is None
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failures_count_and_clear(tmp_path):
    h = SQLiteHealth(tmp_path / "h.sqlite")
    for _ in range(3):
        h.set_cooldown("a", time.time() + 5, "http_502")
    assert h.state("a")["failures"] == 3
    h.clear("a")
    assert h.state("a")["failures"] == 0 and _until(h, "a") is None
    h.set_cooldown("a", time.time() - 1, "http_502")
    assert _until(h, "a") is None  # past cooldowns are over


def test_needs_login_is_lifted_only_by_a_login(tmp_path):
    h = SQLiteHealth(tmp_path / "h.sqlite")
    h.mark_needs_login("a", "refresh_token_reused")
    h.clear("a")
    assert h.state("a")["needs_login"]
    h.clear("a", login=True)
    assert not h.state("a")["needs_login"] and h.state("a")["login_reason"] is None
    h.forget("a")
    assert h.state("a") is None


def test_bookkeeping_is_recorded(tmp_path):
    h = SQLiteHealth(tmp_path / "h.sqlite")
    h.record_rate_limits("a", {"primary": {"used_percent": 42.0}})
    h.record_refresh("a")
    row = SQLiteHealth(tmp_path / "h.sqlite").snapshot()["a"]
    assert row["rate_limits"] == {"primary": {"used_percent": 42.0}}
    assert row["last_used"] and row["last_refresh"]
    h.record_used("b")
    assert SQLiteHealth(tmp_path / "h.sqlite").state("b")["last_used"]


def test_every_write_is_seen_at_once_and_unchanged_reads_are_cached(tmp_path):
    path = tmp_path / "h.sqlite"
    mine, other = SQLiteHealth(path), SQLiteHealth(path)
    assert _until(mine, "a") is None
    first = mine.snapshot()
    assert mine.snapshot() is first  # nothing committed since: the same snapshot, no query
    other.set_cooldown("a", time.time() + 60, "x")
    assert _until(mine, "a")  # another worker's write: seen on the next read
    assert mine.snapshot()["a"]["reason"] == "x"
    mine.set_cooldown("b", time.time() + 60, "y")
    assert _until(mine, "b")  # its own write: seen at once


def test_threads_of_one_worker_see_each_others_writes(tmp_path):
    import threading
    h = SQLiteHealth(tmp_path / "h.sqlite")
    assert _until(h, "a") is None
    t = threading.Thread(target=h.set_cooldown, args=("a", time.time() + 60, "x"))
    t.start(); t.join()
    assert _until(h, "a")


def test_one_probe_claim_wins(tmp_path):
    path = tmp_path / "h.sqlite"
    a, b = SQLiteHealth(path), SQLiteHealth(path)
    a.set_cooldown("x", time.time() + 3600, "usage_limit_reached")
    assert not a.claim_probe("x", older_than=time.time() - 60)  # checked just now
    with sqlite3.connect(path) as conn:  # as if the last check was 20 minutes ago
        conn.execute("UPDATE health SET probe_at = ?", (time.time() - 1200,))
    older_than = time.time() - 900
    assert [a.claim_probe("x", older_than), b.claim_probe("x", older_than)].count(True) == 1
