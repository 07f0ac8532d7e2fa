"""The usage store (SQLite): private, grouped and pruned, aggregated like the reference."""
from __future__ import annotations

import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.usage.records import UsageRow, aggregate
from gateway.usage.store import SQLiteUsage

DAY = 86400.0
T0 = 1_796_000_000.0  # 2026-11-30 UTC


def row(**kw) -> UsageRow:
    base = dict(ts=T0, key_id="key-a", account="codex-a", dialect="responses", transport="http",
                model_asked="gpt-5-codex", model_sent=None, continuity="prompt_cache_key",
                status=200, outcome="completed", error_code=None, input_tokens=100,
                cached_tokens=50, output_tokens=10, reasoning_tokens=2, ttfb_ms=20.0,
                duration_ms=40.0)
    base.update(kw)
    return UsageRow(**base)


def test_store_file_is_private_and_in_wal_mode(tmp_path):
    store = SQLiteUsage(tmp_path / "state" / "usage.sqlite")
    store.add([row()])
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
    for name in ("usage.sqlite", "usage.sqlite-wal", "usage.sqlite-shm"):
        assert stat.S_IMODE(os.stat(tmp_path / "state" / name).st_mode) == 0o600
    mode = store._conn().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_reading_a_missing_store_creates_nothing(tmp_path):
    store = SQLiteUsage(tmp_path / "usage.sqlite")
    assert store.query(0, "key") == [] and store.recent_errors(0) == []
    assert not (tmp_path / "usage.sqlite").exists()


def test_query_groups_sums_and_medians(tmp_path):
    store = SQLiteUsage(tmp_path / "u.sqlite")
    store.add([
        row(key_id="key-a", ttfb_ms=10.0),
        row(key_id="key-a", ttfb_ms=30.0, input_tokens=200, cached_tokens=0),
        row(key_id="key-b", status=502, outcome="upstream_error", input_tokens=None,
            cached_tokens=None, output_tokens=None, reasoning_tokens=None, ttfb_ms=None,
            error_code="upstream_unreachable"),
        row(key_id=None, ts=T0 + DAY, model_sent="gpt-5.1-codex"),
    ])
    by_key = {a.group: a for a in store.query(0, "key")}
    a = by_key["key-a"]
    assert (a.requests, a.errors, a.input_tokens, a.cached_tokens) == (2, 0, 300, 50)
    assert a.median_ttfb_ms == 20.0 and a.cache_hit_ratio == pytest.approx(50 / 300)
    b = by_key["key-b"]
    assert (b.requests, b.errors, b.input_tokens, b.median_ttfb_ms, b.cache_hit_ratio) == \
        (1, 1, 0, None, None)
    assert by_key[None].requests == 1
    assert [d.group for d in store.query(0, "day")] == ["2026-11-30", "2026-12-01"]
    assert {m.group for m in store.query(0, "model")} == {"gpt-5-codex", "gpt-5.1-codex"}
    assert store.query(T0 + 1, "total")[0].requests == 1
    assert store.query(0, "total", until=T0 + 1)[0].requests == 3
    errors = store.recent_errors(0)
    assert [e.error_code for e in errors] == ["upstream_unreachable"]
    with pytest.raises(ValueError, match="unknown grouping"):
        store.query(0, "nonsense")


def test_prune_drops_old_rows_only(tmp_path):
    store = SQLiteUsage(tmp_path / "u.sqlite")
    store.add([row(ts=T0 - 100 * DAY), row(ts=T0 - 91 * DAY), row(ts=T0 - 89 * DAY), row()])
    assert store.prune(T0 - 90 * DAY) == 2
    assert store.query(0, "total")[0].requests == 2


rows_strategy = st.lists(st.builds(
    row,
    ts=st.floats(T0, T0 + 3 * DAY),
    key_id=st.sampled_from(["key-a", "key-b", None]),
    account=st.sampled_from(["codex-a", "codex-b", None]),
    model_sent=st.sampled_from([None, "gpt-5", "gpt-5-codex"]),
    status=st.sampled_from([200, 400, 429, 502]),
    outcome=st.sampled_from(["completed", "failed", "client_closed", "rejected"]),
    input_tokens=st.one_of(st.none(), st.integers(0, 10**6)),
    cached_tokens=st.one_of(st.none(), st.integers(0, 10**6)),
    output_tokens=st.one_of(st.none(), st.integers(0, 10**5)),
    reasoning_tokens=st.one_of(st.none(), st.integers(0, 10**5)),
    ttfb_ms=st.one_of(st.none(), st.floats(0, 10**4).map(lambda f: round(f, 3))),
), max_size=30)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, by=st.sampled_from(["key", "account", "model", "day", "hour", "total"]))
def test_sqlite_agrees_with_the_reference_aggregation(tmp_path_factory, rows, by):
    store = SQLiteUsage(tmp_path_factory.mktemp("agg") / "u.sqlite")
    store.add(rows)
    got = store.query(0, by)
    want = aggregate(rows, by)
    assert [g.group for g in got] == [w.group for w in want]
    for g, w in zip(got, want):
        assert (g.requests, g.errors, g.input_tokens, g.cached_tokens, g.output_tokens,
                g.reasoning_tokens) == (w.requests, w.errors, w.input_tokens, w.cached_tokens,
                                        w.output_tokens, w.reasoning_tokens)
        assert (g.median_ttfb_ms is None) == (w.median_ttfb_ms is None)
        if w.median_ttfb_ms is not None:
            assert g.median_ttfb_ms == pytest.approx(w.median_ttfb_ms)


def test_a_database_from_before_service_tier_gets_the_column(tmp_path):
    import sqlite3

    from gateway.usage.records import UsageRow
    from gateway.usage.store import SQLiteUsage
    path = tmp_path / "usage.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE usage (ts REAL NOT NULL, key_id TEXT, account TEXT, dialect TEXT, "
                "transport TEXT, model_asked TEXT, model_sent TEXT, continuity TEXT, "
                "status INTEGER, outcome TEXT, error_code TEXT, input_tokens INTEGER, "
                "cached_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER, "
                "ttfb_ms REAL, duration_ms REAL, error INTEGER NOT NULL DEFAULT 0)")
    old.commit()
    old.close()
    store = SQLiteUsage(path)
    store.add([UsageRow(1.0, "k", "a", "responses", "http", "m", "m", "c", 200, "completed",
                        None, 10, 0, 5, 0, 1.0, 2.0, "priority")])
    [total] = store.query(0, "total")
    assert total.requests == 1
