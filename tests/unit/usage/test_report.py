"""`codex-gateway usage`: --since, the table (ratios, totals, breaks), the command."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from gateway import cli
from gateway.usage import report
from gateway.usage.records import Aggregate
from gateway.usage.store import SQLiteUsage
from tests.unit.usage.test_store import row

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("text, expected", [
    ("7d", NOW - 7 * 86400), ("24h", NOW - 86400), ("30m", NOW - 1800), ("90s", NOW - 90),
    ("2w", NOW - 14 * 86400), (" 1.5h ", NOW - 5400),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()),
    ("2026-11-01T06:30", datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc).timestamp()),
    ("2026-11-01T06:30:00+02:00", datetime(2026, 11, 1, 4, 30, tzinfo=timezone.utc).timestamp()),
])
def test_parse_since(text, expected):
    assert report.parse_since(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "7 days", "-3d", "2026-13-01"])
def test_parse_since_says_what_it_accepts(text):
    with pytest.raises(ValueError, match="7d, 24h, 30m"):
        report.parse_since(text, NOW)


def test_start_of_day_is_utc_midnight():
    assert report.start_of_day(NOW) == datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()


def test_table_has_a_total_line_and_ratios():
    rows = [Aggregate("key-a", 3, 1, 3000, 1500, 30, 5, 120.0),
            Aggregate("key-b", 1, 0, 0, 0, 0, 0, None)]
    lines = report.table(rows, "key").splitlines()
    assert lines[0].split()[:3] == ["KEY", "REQUESTS", "ERRORS"]
    assert "50.0%" in lines[1] and "120 ms" in lines[1] and "3,000" in lines[1]
    assert lines[2].split()[-2:] == ["-", "-"]
    assert lines[3].split()[:3] == ["total", "4", "1"]


@pytest.fixture
def env(state_env):
    return state_env


def test_usage_command_json_and_table(env, capsys):
    import time

    now = time.time()
    SQLiteUsage(env / "usage.sqlite").add([
        row(ts=now - 60, key_id="key-a", input_tokens=2000, cached_tokens=1536, ttfb_ms=10.0),
        row(ts=now - 30, key_id="key-a", status=502, outcome="upstream_error", ttfb_ms=30.0),
        row(ts=now - 20, key_id="key-b", reasoning_tokens=9),
        row(ts=now - 10 * 86400, key_id="key-old"),
    ])
    assert cli.main(["usage", "--by", "key", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in rows] == ["key-a", "key-b"]  # default --since 7d
    a = rows[0]
    assert {k: a[k] for k in ("requests", "errors", "input_tokens", "cached_tokens",
                              "output_tokens", "reasoning_tokens")} == {
        "requests": 2, "errors": 1, "input_tokens": 2100, "cached_tokens": 1586,
        "output_tokens": 20, "reasoning_tokens": 4}
    assert a["cache_hit_ratio"] == round(1586 / 2100, 4) and a["median_ttfb_ms"] == 20.0
    assert cli.main(["usage", "--by", "day", "--since", "30d"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("DAY") and "total" in out
    assert cli.main(["usage", "--since", "soon"]) == 2
    assert "7d, 24h" in capsys.readouterr().err


def test_usage_command_without_a_store(env, capsys):
    assert cli.main(["usage"]) == 0
    assert "No usage since" in capsys.readouterr().out
    assert not (env / "usage.sqlite").exists()
    assert cli.main(["usage", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_usage_report_has_a_breaks_column():
    rows = [Aggregate("key-a", 3, 0, 3000, 1500, 30, 5, 120.0, breaks=2,
                      causes=(("tools", 2),))]
    head, line = report.table(rows, "key").splitlines()
    assert head.split()[7] == "BREAKS" and line.split()[7] == "2"
