"""gateway.prefix.store: both backends keep a key's records for a bounded time
and size, and an unreachable store means "nothing kept", never an error."""
from __future__ import annotations

from gateway import config
from gateway.prefix.store import RedisPrefixStore, SQLitePrefixStore, open_store
from gateway.state.link import Link


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_sqlite_keeps_expires_and_bounds(tmp_path):
    clock = Clock()
    store = SQLitePrefixStore(tmp_path / "p.sqlite", ttl=60, max_keys=2, max_bytes=100,
                              clock=clock)
    store.put_turns("k1", b"one")
    for n in range(5):
        store.add_answer("k1", b"answer %d" % n, keep=3)
    assert store.get_turns("k1") == b"one"
    assert store.answers("k1") == [b"answer 2", b"answer 3", b"answer 4"]  # the last 3
    store.put_turns("k1", b"x" * 101)  # too big: not stored, the old value stays
    store.add_answer("k1", b"x" * 101, keep=3)
    assert store.get_turns("k1") == b"one" and len(store.answers("k1")) == 3
    clock.now += 61
    assert (store.get_turns("k1"), store.answers("k1")) == (None, [])
    for i in range(4):
        clock.now += 1
        store.put_turns(f"k{i}", b"v")
        store.add_answer(f"k{i}", b"a", keep=3)
    store.prune()
    assert [store.get_turns(f"k{i}") for i in range(4)] == [None, None, b"v", b"v"]
    assert [store.answers(f"k{i}") for i in range(4)] == [[], [], [b"a"], [b"a"]]
    assert oct((tmp_path / "p.sqlite").stat().st_mode & 0o777) == "0o600"


def test_sqlite_that_cannot_be_written_keeps_nothing(tmp_path):
    (tmp_path / "p.sqlite").mkdir()  # not a database
    store = SQLitePrefixStore(tmp_path / "p.sqlite", 60, 10, 100)
    store.put_turns("k", b"v")
    store.add_answer("k", b"a", keep=3)
    assert (store.get_turns("k"), store.answers("k")) == (None, [])


def test_redis_shares_expires_and_survives_an_outage(redis_srv):
    one = RedisPrefixStore(Link(redis_srv.url, 1.0), "t:", ttl=30, max_bytes=100)
    two = RedisPrefixStore(Link(redis_srv.url, 1.0), "t:", ttl=30, max_bytes=100)
    one.put_turns("k", b"fp")
    for n in range(5):
        one.add_answer("k", b"answer %d" % n, keep=3)
    assert two.get_turns("k") == b"fp"  # another instance sees it
    assert two.answers("k") == [b"answer 2", b"answer 3", b"answer 4"]
    for name in ("t:prefix:turns:k", "t:prefix:answers:k"):
        assert 0 < one.link.run(lambda r: r.ttl(name)) <= 30
    one.put_turns("k", b"x" * 101)
    assert two.get_turns("k") == b"fp"
    gone = RedisPrefixStore(Link("redis://127.0.0.1:1/0", 0.2), "t:", ttl=30, max_bytes=100)
    gone.put_turns("k", b"v")
    gone.add_answer("k", b"a", keep=3)
    assert (gone.get_turns("k"), gone.answers("k")) == (None, [])


def test_the_configured_backend_is_used(tmp_path, redis_srv):
    cfg = config.load(env={"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path)})
    assert isinstance(open_store(cfg), SQLitePrefixStore)
    cfg = config.load(env={"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path),
                           "CODEX_GATEWAY_STATE_BACKEND": "redis",
                           "CODEX_GATEWAY_STATE_REDIS_URL": redis_srv.url,
                           "CODEX_GATEWAY_PREFIX_TTL_SECONDS": "120"})
    store = open_store(cfg)
    assert isinstance(store, RedisPrefixStore) and store.ttl == 120


def test_a_usage_database_from_before_gains_the_break_columns(tmp_path):
    import sqlite3

    from gateway.usage.records import UsageRow
    from gateway.usage.store import SQLiteUsage
    path = tmp_path / "usage.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE usage (
        ts REAL NOT NULL, key_id TEXT, account TEXT, dialect TEXT, transport TEXT,
        model_asked TEXT, model_sent TEXT, continuity TEXT, status INTEGER, outcome TEXT,
        error_code TEXT, input_tokens INTEGER, cached_tokens INTEGER, output_tokens INTEGER,
        reasoning_tokens INTEGER, ttfb_ms REAL, duration_ms REAL, error INTEGER NOT NULL DEFAULT 0);
        INSERT INTO usage (ts, key_id, status, outcome, duration_ms)
            VALUES (1, 'k', 200, 'completed', 5);
    """)
    old.close()
    store = SQLiteUsage(path)
    row = dict(ts=2.0, key_id="k", account="a", dialect="chat", transport="http",
               model_asked="m", model_sent="m", continuity="x", status=200, outcome="completed",
               error_code=None, input_tokens=10, cached_tokens=0, output_tokens=1,
               reasoning_tokens=0, ttfb_ms=1.0, duration_ms=2.0)
    store.add([UsageRow(**row, cache_break="tools", repaired=3), UsageRow(**row)])
    (agg,) = store.query(0, "key")
    assert (agg.requests, agg.breaks, agg.repaired, agg.causes) == (3, 1, 3, (("tools", 1),))


def test_sqlite_trims_answers_in_the_insert_and_follows_a_new_keep(tmp_path):
    """The trigger keeps a key's last *keep* answers (another key's are untouched);
    another max_answers replaces it; a file of the older layout (AUTOINCREMENT,
    rows replaced, an index on written) is read and written alike."""
    import sqlite3

    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as c:
        c.executescript("""
            CREATE TABLE turns (key TEXT PRIMARY KEY, value BLOB NOT NULL, written REAL NOT NULL);
            CREATE TABLE answers (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
                                  value BLOB NOT NULL, written REAL NOT NULL);
            CREATE INDEX answers_written ON answers (written);
            INSERT INTO turns VALUES ('k', 'old', 1e12);""")
    for path in (tmp_path / "new.sqlite", old):
        store = SQLitePrefixStore(path, ttl=60, max_keys=10, max_bytes=100)
        for n in range(6):
            store.add_answer("k", b"a%d" % n, keep=4)
            store.add_answer("other", b"o%d" % n, keep=4)
        assert store.answers("k") == [b"a2", b"a3", b"a4", b"a5"]
        store.add_answer("k", b"a6", keep=2)
        assert store.answers("k") == [b"a5", b"a6"]
        assert len(store.answers("other")) == 4
        store.put_turns("k", b"v1")
        store.put_turns("k", b"v2")
        assert store.get_turns("k") == b"v2"
    with sqlite3.connect(old) as c:
        assert not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'answers_written'").fetchall()


def test_sqlite_threads_share_one_connection_and_lose_nothing(tmp_path, caplog):
    """The process's threads take turns on one connection (one warm page cache):
    16 threads writing and reading at once neither fail nor lose a write."""
    import threading

    store = SQLitePrefixStore(tmp_path / "p.sqlite", ttl=60, max_keys=1000, max_bytes=1000)
    start = threading.Barrier(16)
    misread = []

    def turn(n: int) -> None:
        start.wait()
        for i in range(20):
            store.put_turns(f"k{n}", b"turn %d" % i)
            store.add_answer(f"k{n}", b"answer %d" % i, keep=4)
            if store.get_turns(f"k{n}") != b"turn %d" % i:
                misread.append((n, i))

    threads = [threading.Thread(target=turn, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert misread == []
    assert [store.answers(f"k{n}") for n in range(16)] == \
        [[b"answer %d" % i for i in range(16, 20)]] * 16
    assert not [r for r in caplog.records if r.name == "gateway.prefix"]
    connections = [store._conn()]
    other = threading.Thread(target=lambda: connections.append(store._conn()))
    other.start()
    other.join()
    assert connections[0] is connections[1]
