"""gateway.policy.report
~~~~~~~~~~~~~~~~~~~~~~~~
A key's usage against its limits, in one shape for ``keys list --json``,
``GET /v1/usage`` and the status page.

``today`` and ``week`` are the usage rows of the key (what ``codex-gateway
usage`` counts); each limit shows what the gate enforces: the counters' charged
tokens, the requests of the last minute, the answers in flight. Nothing here
describes an account or another key.
"""
from __future__ import annotations

from .admission import MINUTE, day_window, week_window
from .model import Policy


def window(agg, since: float, until: float) -> dict:
    """Usage rows aggregated for one key (*agg*: an ``Aggregate`` or None)."""
    inp = agg.input_tokens if agg else 0
    out = agg.output_tokens if agg else 0
    return {"since": int(since), "resets_at": int(until), "requests": agg.requests if agg else 0,
            "input_tokens": inp, "cached_tokens": agg.cached_tokens if agg else 0,
            "output_tokens": out, "tokens": inp + out}


def key_report(key_id: str, name: str, policy: Policy, today, week, seen, now: float) -> dict:
    """One key: its policy, its usage rows today and this week, and each limit
    with what is used, what remains and when it resets."""
    day, day_start, day_end = day_window(now)
    wk, week_start, week_end = week_window(now)
    status = "revoked" if policy.revoked else "expired" if policy.expired(now) else "active"
    limits: dict = {}
    for lname, bucket, until in (("tokens_per_day", day, day_end),
                                 ("tokens_per_week", wk, week_end)):
        limit = getattr(policy, lname)
        if limit is not None:
            used = seen.charged.get(bucket, 0)
            limits[lname] = {"limit": limit, "used": used, "remaining": max(0, limit - used),
                             "resets_at": int(until)}
    if policy.requests_per_minute is not None:
        reset = (seen.oldest or now) + MINUTE
        limits["requests_per_minute"] = {
            "limit": policy.requests_per_minute, "used": seen.requests,
            "remaining": max(0, policy.requests_per_minute - seen.requests),
            "resets_at": int(-(-reset // 1))}
    if policy.concurrency is not None:
        limits["concurrency"] = {"limit": policy.concurrency, "in_flight": seen.in_flight}
    return {"id": key_id, "name": name, "status": status,
            "models": list(policy.models) or None,
            "expires_at": int(policy.expires_at) if policy.expires_at is not None else None,
            "show_quota": policy.show_quota, "limits": limits,
            "today": window(today, day_start, day_end),
            "week": window(week, week_start, week_end)}


def key_reports(keys: list[tuple[str, str]], policies, counters, usage_store, now: float
                ) -> list[dict]:
    """``key_report`` for each ``(id, name)``, reading the usage rows once."""
    _, day_start, _ = day_window(now)
    _, week_start, _ = week_window(now)
    today = {a.group: a for a in usage_store.query(day_start, "key")}
    week = {a.group: a for a in usage_store.query(week_start, "key")}
    day, wk = day_window(now)[0], week_window(now)[0]
    out = []
    for key_id, name in keys:
        policy = policies.get(key_id)
        seen = counters.seen(key_id, (day, wk), now)
        out.append(key_report(key_id, name, policy, today.get(key_id), week.get(key_id),
                              seen, now))
    return out


def gate_reports(keys: list[tuple[str, str]], gate, now: float, usage_store) -> list[dict]:
    """``key_reports`` with a gate's policies and counters; [] when they cannot be
    read (the status page still shows the rest)."""
    try:
        return key_reports(keys, gate.policies, gate.counters, usage_store, now)
    except Exception:  # noqa: BLE001 - StateUnavailable, sqlite3.Error
        return []
