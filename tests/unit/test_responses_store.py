"""The response store's two backends (SQLite, Redis) behind one interface, and the Keeper."""
from __future__ import annotations

import time
import uuid

import pytest

from gateway.responses_store import Keeper, Stored
from gateway.responses_store.redis import RedisResponses
from gateway.responses_store.sqlite import SQLiteResponses
from gateway.state.link import Link

DAY = 86400.0


@pytest.fixture(params=["sqlite", "redis"])
def make_backend(request, tmp_path):
    def make(retention=30 * DAY, max_bytes=10**9):
        if request.param == "sqlite":
            return SQLiteResponses(tmp_path / "responses.sqlite", retention, max_bytes)
        srv = request.getfixturevalue("redis_srv")
        return RedisResponses(Link(srv.url, 1.0), f"t-{uuid.uuid4().hex[:8]}:", retention,
                              max_bytes)
    return make


def stored(rid: str, owner="k1", created=None, text="x") -> Stored:
    out = [{"id": f"rs_{rid}", "type": "reasoning", "summary": [], "encrypted_content": "e"},
           {"id": f"msg_{rid}", "type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]}]
    return Stored(rid, owner, created or time.time(), [{"role": "user", "content": text}], 1,
                  {"id": rid, "object": "response", "output": out})


def put(backend, s: Stored) -> int:
    blob = s.encode()
    backend.put(s, blob)
    return len(blob)


def test_kept_by_id_and_owner_with_its_items(make_backend):
    b = make_backend()
    put(b, stored("r1"))
    got = b.get("r1", "k1")
    assert got.input == [{"role": "user", "content": "x"}] and got.own_input == 1
    assert got.response["output"][1]["id"] == "msg_r1"
    assert b.get("r1", "k2") is None and b.get("nope", "k1") is None
    assert b.find_item("rs_r1", "k1").id == "r1"
    assert b.find_item("rs_r1", "k2") is None
    assert not b.delete("r1", "k2") and b.get("r1", "k1") is not None
    assert b.delete("r1", "k1") and b.get("r1", "k1") is None
    assert b.find_item("rs_r1", "k1") is None and not b.delete("r1", "k1")


def test_the_oldest_go_first_beyond_the_size_cap(make_backend):
    one = len(stored("r0").encode())
    b = make_backend(max_bytes=int(one * 3.5))
    now = time.time()
    for i in range(6):
        put(b, stored(f"r{i}", created=now + i))
    kept = [i for i in range(6) if b.get(f"r{i}", "k1") is not None]
    assert kept[-1] == 5 and kept == list(range(6 - len(kept), 6)) and 2 <= len(kept) <= 3


def test_responses_past_retention_are_gone(make_backend):
    b = make_backend(retention=DAY)
    put(b, stored("old", created=time.time() - 2 * DAY))
    put(b, stored("new"))
    assert b.get("old", "k1") is None and b.get("new", "k1") is not None
    b.prune(time.time())
    assert b.get("new", "k1") is not None and b.find_item("rs_old", "k1") is None


def test_purge_drops_everything(make_backend):
    b = make_backend()
    put(b, stored("a"))
    put(b, stored("b", owner="k2"))
    assert b.purge() >= 2
    assert b.get("a", "k1") is None and b.get("b", "k2") is None


def test_the_keeper_reads_its_own_writes_before_they_land(tmp_path):
    backend = SQLiteResponses(tmp_path / "r.sqlite", DAY, 10**9)
    keeper = Keeper(backend, miss_wait=0)
    keeper.keep(stored("r1"))
    assert keeper.get("r1", "k1").id == "r1" and keeper.get("r1", "k2") is None
    assert keeper.find_item("msg_r1", "k1")["type"] == "message"
    assert keeper.flush()
    assert backend.get("r1", "k1") is not None and keeper.written == 1
    assert keeper.bytes_written == len(stored("r1").encode())


def test_a_write_that_fails_is_counted_never_raised(tmp_path, caplog):
    class Broken(SQLiteResponses):
        def put_batch(self, batch):
            raise OSError("read-only file system")
    keeper = Keeper(Broken(tmp_path / "r.sqlite", DAY, 10**9), miss_wait=0)
    caplog.set_level("WARNING", logger="gateway.responses")
    keeper.keep(stored("r1"))
    keeper.keep(stored("r2"))
    assert keeper.flush()
    assert keeper.dropped == 2 and keeper.written == 0
    assert sum("cannot be written" in r.getMessage() for r in caplog.records) == 1


def test_the_purge_command_empties_the_store(tmp_path, monkeypatch, capsys):
    from gateway import cli
    monkeypatch.setenv("CODEX_GATEWAY_ACCOUNTS_STATE_DIR", str(tmp_path))
    backend = SQLiteResponses(tmp_path / "responses.sqlite", DAY, 10**9)
    put(backend, stored("r1"))
    put(backend, stored("r2", owner="k2"))
    assert cli.main(["responses", "purge"]) == 0
    assert "purged 2 stored responses" in capsys.readouterr().out
    assert backend.get("r1", "k1") is None and backend.get("r2", "k2") is None


def test_a_backend_that_cannot_be_read_is_unavailable_not_a_crash(tmp_path):
    import sqlite3

    from gateway.responses_store import StateUnavailable

    class Locked(SQLiteResponses):
        def get(self, rid, owner):
            raise sqlite3.OperationalError("database is locked")
    keeper = Keeper(Locked(tmp_path / "r.sqlite", DAY, 10**9), miss_wait=0)
    with pytest.raises(StateUnavailable):
        keeper.get("r1", "k1")
