"""gateway.usage.records
~~~~~~~~~~~~~~~~~~~~~~~~
A usage row: the storable facts of one finished :class:`~gateway.record.RequestRecord`,
and the aggregate rows that ``codex-gateway usage``, the status page and any
store return.

Rows hold ids, never secrets: the client key's id, the account id, token
counts and timings. A row is plain data (no clocks, no record reference), so a
store can be swapped (SQLite today, Redis later) without touching the writer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields

# Outcomes that are the upstream's or the gateway's failure (the client's own
# disconnect and a refusal before any upstream call are counted by status).
FAILED_OUTCOMES = frozenset({"failed", "truncated", "upstream_error"})
GROUPS = ("key", "account", "model", "day", "hour", "total")


@dataclass(frozen=True, slots=True)
class UsageRow:
    ts: float                      # wall clock when the request started (unix seconds)
    key_id: str | None
    account: str | None
    dialect: str
    transport: str
    model_asked: str | None
    model_sent: str | None
    continuity: str | None         # which continuity source chose the key
    status: int
    outcome: str
    error_code: str | None
    input_tokens: int | None
    cached_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    ttfb_ms: float | None
    duration_ms: float
    service_tier: str | None = None  # the tier the upstream reports it served
    cache_break: str | None = None  # the cause of a cache break (gateway.prefix), else None
    repaired: int | None = 0        # items the gateway restored to the model's own form

    @property
    def error(self) -> bool:
        return is_error(self.status, self.outcome)

    @property
    def model(self) -> str | None:
        return self.model_sent or self.model_asked


COLUMNS = tuple(f.name for f in fields(UsageRow))


def is_error(status: int, outcome: str) -> bool:
    """An error for usage purposes: an HTTP error status, or a stream that
    failed after its 200 (the status stays 200 once the first byte is out)."""
    return status >= 400 or outcome in FAILED_OUTCOMES


def row_from_record(rec) -> UsageRow:
    """The usage row of a finished request record."""
    ttfb = rec.ttfb_ms
    outcome = rec.outcome
    return UsageRow(
        ts=rec.started_at, key_id=rec.key_id, account=rec.account, dialect=rec.dialect,
        transport=rec.transport, model_asked=rec.model_asked, model_sent=rec.model_sent,
        continuity=rec.continuity_source, status=int(rec.status or 0),
        outcome=getattr(outcome, "value", outcome) or "open", error_code=rec.error_code,
        input_tokens=rec.input_tokens, cached_tokens=rec.cached_tokens,
        output_tokens=rec.output_tokens, reasoning_tokens=rec.reasoning_tokens,
        ttfb_ms=None if ttfb is None else round(ttfb, 3), duration_ms=round(rec.duration_ms, 3),
        service_tier=rec.service_tier,
        cache_break=rec.cache_break.split("@", 1)[0] if rec.cache_break else None,
        repaired=rec.repaired)


@dataclass(frozen=True)
class Aggregate:
    """One row of ``codex-gateway usage``: the requests of one group."""

    group: str | None              # the key id, account, model, day (YYYY-MM-DD) or hour
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    median_ttfb_ms: float | None = None
    breaks: int = 0                # turns that rewrote the cached prefix (cache breaks)
    repaired: int = 0
    causes: tuple = ()             # (cause, count) of those breaks, most frequent first

    @property
    def cache_hit_ratio(self) -> float | None:
        """Cached ÷ input tokens: the share of prompt tokens the upstream's cache served."""
        return self.cached_tokens / self.input_tokens if self.input_tokens else None

    def as_dict(self, by: str) -> dict:
        ratio = self.cache_hit_ratio
        return {by: self.group, "requests": self.requests, "errors": self.errors,
                "input_tokens": self.input_tokens, "cached_tokens": self.cached_tokens,
                "output_tokens": self.output_tokens, "reasoning_tokens": self.reasoning_tokens,
                "cache_hit_ratio": None if ratio is None else round(ratio, 4),
                "median_ttfb_ms": None if self.median_ttfb_ms is None
                else round(self.median_ttfb_ms, 1),
                "cache_breaks": self.breaks, "cache_break_causes": dict(self.causes),
                "repaired_items": self.repaired}


def group_of(row: UsageRow, by: str) -> str | None:
    """The group a row falls in (UTC days and hours, so every host agrees)."""
    if by == "key":
        return row.key_id
    if by == "account":
        return row.account
    if by == "model":
        return row.model
    if by == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(row.ts))
    if by == "hour":
        return time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(row.ts))
    if by == "total":
        return None
    raise ValueError(f"unknown grouping {by!r}; one of {', '.join(GROUPS)}")


def aggregate(rows, by: str) -> list[Aggregate]:
    """Aggregate *rows* by *by*, in group order. The reference implementation a
    store's ``query`` must agree with (SQLite computes the same in SQL)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(group_of(row, by), []).append(row)
    out = []
    for group in sorted(groups, key=lambda g: (g is None, g or "")):
        items = groups[group]
        ttfbs = sorted(r.ttfb_ms for r in items if r.ttfb_ms is not None)
        out.append(Aggregate(
            group=group, requests=len(items), errors=sum(r.error for r in items),
            input_tokens=sum(r.input_tokens or 0 for r in items),
            cached_tokens=sum(r.cached_tokens or 0 for r in items),
            output_tokens=sum(r.output_tokens or 0 for r in items),
            reasoning_tokens=sum(r.reasoning_tokens or 0 for r in items),
            median_ttfb_ms=median(ttfbs),
            breaks=sum(r.cache_break is not None for r in items),
            repaired=sum(r.repaired or 0 for r in items),
            causes=ranked_causes((r.cache_break, 1) for r in items if r.cache_break)))
    return out


def ranked_causes(pairs) -> tuple:
    """``(cause, count)`` pairs summed per cause, most frequent first (then by name)."""
    totals: dict = {}
    for cause, n in pairs:
        totals[cause] = totals.get(cause, 0) + n
    return tuple(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


def median(sorted_values) -> float | None:
    """The median of already sorted values (the mean of the middle two when even)."""
    n = len(sorted_values)
    if not n:
        return None
    mid = n // 2
    return float(sorted_values[mid]) if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2
