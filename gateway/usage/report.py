"""gateway.usage.report
~~~~~~~~~~~~~~~~~~~~~~~
``codex-gateway usage``: what ``--since`` means and how the rows are shown.
Pure functions: the command reads the store and prints what these return.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

from .records import Aggregate

BY_CHOICES = ("key", "account", "model", "day")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float) -> float:
    """Unix time from ``7d``, ``24h``, ``30m``, ``2w`` (before *now*), or a UTC date
    ``2026-11-01`` / date-time ``2026-11-01T12:00`` (an explicit offset is honoured).
    Raises ValueError with a message that shows the accepted forms."""
    m = _RELATIVE.match(text or "")
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2).lower()]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ValueError(f"--since {text!r}: expected a duration like 7d, 24h, 30m or a date "
                         "like 2026-11-01 (UTC)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def start_of_day(now: float) -> float:
    """Midnight UTC of *now*'s day (the status page's "today")."""
    t = time.gmtime(now)
    return datetime(t.tm_year, t.tm_mon, t.tm_mday, tzinfo=timezone.utc).timestamp()


def to_json(rows: list[Aggregate], by: str) -> str:
    return json.dumps([r.as_dict(by) for r in rows], indent=2)


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def table(rows: list[Aggregate], by: str) -> str:
    """A plain-text table with a total line (no colours: it is often piped)."""
    head = (by.upper(), "REQUESTS", "ERRORS", "INPUT", "CACHED", "OUTPUT", "REASONING",
            "BREAKS", "CACHE HIT", "TTFB p50")
    body = [_cells(r.group or "-", r) for r in rows]
    if len(rows) > 1:
        total = Aggregate(group="total", requests=sum(r.requests for r in rows),
                          errors=sum(r.errors for r in rows),
                          input_tokens=sum(r.input_tokens for r in rows),
                          cached_tokens=sum(r.cached_tokens for r in rows),
                          output_tokens=sum(r.output_tokens for r in rows),
                          reasoning_tokens=sum(r.reasoning_tokens for r in rows),
                          breaks=sum(r.breaks for r in rows))
        body.append(_cells("total", total, ttfb=False))
    grid = [head] + body
    widths = [max(len(row[i]) for row in grid) for i in range(len(head))]
    lines = []
    for row in grid:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cells(label: str, r: Aggregate, ttfb: bool = True) -> tuple[str, ...]:
    median = r.median_ttfb_ms if ttfb else None
    return (label, str(r.requests), str(r.errors), f"{r.input_tokens:,}", f"{r.cached_tokens:,}",
            f"{r.output_tokens:,}", f"{r.reasoning_tokens:,}", f"{r.breaks:,}",
            ratio(r.cache_hit_ratio), "-" if median is None else f"{median:.0f} ms")
