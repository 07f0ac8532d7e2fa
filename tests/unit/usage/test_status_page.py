"""The status page: data in, one self-contained HTML page out."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from gateway.usage.records import Aggregate
from gateway.usage.status_page import StatusData, chart, quota_bar, render
from tests.unit.usage.test_store import row

NOW = 1_796_000_000.0  # 2026-11-30 00:53 UTC


def accounts():
    return [
        {"id": "codex-acct-a", "kind": "codex", "label": "main", "plan": "pro", "state": "ok",
         "reason": None, "cooldown_until": None, "last_refresh": NOW - 3600,
         "last_used": NOW - 2, "rate_limits": {
             "primary": {"used_percent": 12.0, "window_minutes": 300, "reset_at": NOW + 3900},
             "secondary": {"used_percent": 95.0, "window_minutes": 10080,
                           "reset_at": NOW + 86400}, "source": "headers"}},
        {"id": "codex-acct-b", "kind": "codex", "label": "<b>x</b>", "plan": None,
         "state": "cooling", "reason": "usage_limit_reached", "cooldown_until": NOW + 600,
         "last_refresh": None, "last_used": None, "rate_limits": {}},
    ]


def data(**kw) -> StatusData:
    base = dict(
        generated_at=NOW, accounts=accounts(),
        today=[Aggregate("key-aaaa", 3, 1, 3000, 2048, 30, 5, 80.0)],
        week=[Aggregate("key-aaaa", 10, 1, 9000, 6144, 90, 5, 75.0),
              Aggregate("key-bbbb", 2, 0, 0, 0, 0, 0, None)],
        hourly=[Aggregate("2026-11-30T00:00Z", 3, 1, 3000, 2048, 30, 5, 80.0),
                Aggregate("2026-11-29T12:00Z", 1, 0, 1000, 0, 3, 0, 50.0)],
        errors=[row(ts=NOW - 60, status=502, outcome="upstream_error",
                    error_code="upstream_unreachable")])
    base.update(kw)
    return StatusData(**base)


class Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append(dict(attrs))


def test_the_page_is_self_contained():
    page = render(data())
    parsed = Collect()
    parsed.feed(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    for attrs in parsed.attrs:
        for name in ("src", "href"):
            assert name not in attrs or not re.match(r"(https?:)?//", attrs[name])
    assert "<style>" in page and "<svg" in page and "@import" not in page and "url(" not in page


def test_accounts_with_both_quota_windows_as_bars():
    page = render(data())
    assert 'data-account="codex-acct-a"' in page and 'data-account="codex-acct-b"' in page
    assert page.count('class="bar" data-window="primary"') == 1
    assert page.count('class="bar" data-window="secondary"') == 1
    assert 'style="width:12.0%"' in page and "12% of 5h · resets in 1h05m" in page
    assert 'class="lvl-bad" style="width:95.0%"' in page  # nearly spent: red
    assert "state-cooling" in page and "usage_limit_reached" in page
    assert "10m (until 01:03 UTC)" in page and "unknown" in page  # b: no windows known


def test_values_are_escaped():
    page = render(data())
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_usage_chart_and_errors():
    page = render(data())
    assert page.count('<tr><td class="mono">key-aaaa</td>') == 2  # today and 7 days
    assert "68.3%" in page  # 2048 / 3000 today
    assert "upstream_unreachable" in page and "502" in page
    svg = chart(data().hourly, NOW, 48)
    assert svg.count('class="hit"') == 2 and "2026-11-30T00:00Z: 68.3%" in svg
    assert "no requests" in chart([], NOW, 48)


def test_an_empty_gateway_still_renders():
    page = render(StatusData(generated_at=NOW, note="Usage recording is off."))
    assert "No account" in page and "No requests." in page and "No errors" in page
    assert "Usage recording is off." in page


@pytest.mark.parametrize("window, expected", [
    (None, "unknown"), ({"used_percent": None}, "unknown"),
    ({"used_percent": 150}, 'style="width:100.0%"'), ({"used_percent": -3}, 'style="width:0.0%"'),
    ({"used_percent": 75}, "lvl-warn"),
])
def test_quota_bar_bounds(window, expected):
    assert expected in quota_bar(window, "primary", NOW)
