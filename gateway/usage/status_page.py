"""gateway.usage.status_page
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``/status`` as one self-contained HTML page: data in, HTML out.

Inline CSS and inline SVG only — no script, no external asset, no build step
— so it renders in any browser, from an air-gapped host, behind any proxy,
and a strict ``Content-Security-Policy`` (``default-src 'none'``) can be sent
with it. Every value is escaped. The data holds ids, labels, counts and
times; never a key or token (the caller builds it from ``accounts list``
rows and usage aggregates, which hold none).
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

from .quota import WINDOWS, format_duration, placement_text, window_label
from .records import Aggregate, UsageRow

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"

CSS = """
:root{--fg:#1d2430;--muted:#667085;--line:#e4e7ec;--bg:#f7f8fa;--ok:#12b76a;--warn:#f79009;
--bad:#f04438;--accent:#2e90fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header{padding:18px 28px;background:#101828;color:#fff;display:flex;align-items:baseline;gap:16px}
header h1{margin:0;font-size:20px;font-weight:600}
header .when{color:#98a2b3;font-size:13px}
main{padding:20px 28px;max-width:1280px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 18px;
margin:0 0 18px}
h2{margin:0 0 12px;font-size:16px}
h3{margin:14px 0 8px;font-size:13px;color:var(--muted);font-weight:600;text-transform:uppercase;
letter-spacing:.04em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:middle}
th{font-size:12px;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;white-space:nowrap}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.state-ok{background:#d1fadf;color:#05603a}.state-cooling{background:#fef0c7;color:#93370d}
.state-needs_login{background:#fee4e2;color:#912018}
.state-disabled{background:#eaecf0;color:#344054}
.quota{min-width:190px}
.bar{height:10px;border-radius:5px;background:#eaecf0;overflow:hidden;margin:2px 0 3px}
.bar>span{display:block;height:100%;border-radius:5px}
.lvl-ok{background:var(--ok)}.lvl-warn{background:var(--warn)}.lvl-bad{background:var(--bad)}
.quota small{color:var(--muted);font-size:12px}
.grid>div{overflow-x:auto}
.empty{color:var(--muted);font-style:italic;padding:6px 0}
svg text{font:11px system-ui,sans-serif;fill:#667085}
"""


@dataclass
class StatusData:
    """Everything the page shows (see :func:`render`)."""

    generated_at: float
    accounts: list[dict] = field(default_factory=list)     # accounts list rows
    today: list[Aggregate] = field(default_factory=list)   # by key, since midnight UTC
    week: list[Aggregate] = field(default_factory=list)    # by key, last 7 days
    hourly: list[Aggregate] = field(default_factory=list)  # by hour, last CHART_HOURS
    errors: list[UsageRow] = field(default_factory=list)   # newest first
    chart_hours: int = 48
    note: str | None = None   # e.g. "usage recording is off"
    keys: list[dict] = field(default_factory=list)  # gateway.policy.report.key_report, each


def render(data: StatusData) -> str:
    now = data.generated_at
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        '<meta name="robots" content="noindex">',
        "<title>codex-gateway status</title>",
        f"<style>{CSS}</style></head><body>",
        '<header><h1>codex-gateway</h1><span class="when">status at '
        f"{_e(_utc(now))}</span></header><main>",
    ]
    if data.note:
        parts.append(f'<section><p class="muted">{_e(data.note)}</p></section>')
    parts.append(_accounts(data.accounts, now))
    parts.append(_keys(data.keys, now))
    parts.append('<section><h2>Usage per client key</h2><div class="grid">'
                 f'<div><h3>Today (UTC)</h3>{_usage(data.today)}</div>'
                 f'<div><h3>Last 7 days</h3>{_usage(data.week)}</div></div></section>')
    parts.append('<section><h2>Cache-hit ratio (cached ÷ input tokens), last '
                 f'{data.chart_hours} hours</h2>{chart(data.hourly, now, data.chart_hours)}'
                 "</section>")
    parts.append(_errors(data.errors))
    parts.append("</main></body></html>")
    return "\n".join(parts)


# -- accounts ---------------------------------------------------------------------

def _accounts(rows: list[dict], now: float) -> str:
    if not rows:
        return ('<section><h2>Accounts</h2><p class="empty">No account. Add one with '
                "<code>codex-gateway login</code>.</p></section>")
    out = ['<section><h2>Accounts</h2><table id="accounts"><thead><tr><th>Account</th>'
           "<th>Plan</th><th>State</th><th>Cooldown</th>"
           "<th>Primary window</th><th>Secondary window</th><th>New conversations</th>"
           "<th>Last refresh</th><th>Last used</th></tr></thead><tbody>"]
    for row in rows:
        state = str(row.get("state") or "ok")
        reason = row.get("reason")
        until = row.get("cooldown_until")
        limits = row.get("rate_limits") or {}
        label = row.get("label") or ""
        out.append(
            f'<tr data-account="{_e(row.get("id"))}">'
            f'<td><div class="mono">{_e(row.get("id"))}</div>'
            f'{f"<small class=muted>{_e(label)}</small>" if label else ""}</td>'
            f'<td>{_e(row.get("plan") or limits.get("plan_type") or "-")}'
            f' <small class="muted">{_e(row.get("kind") or "")}</small></td>'
            f'<td><span class="badge state-{_e(state)}">{_e(state.replace("_", " "))}</span>'
            f'{f"<br><small class=muted>{_e(reason)}</small>" if reason else ""}</td>'
            f"<td>{_e(_cooldown(until, now))}</td>"
            + "".join(f"<td>{quota_bar(limits.get(w), w, now)}</td>" for w in WINDOWS)
            + f'<td data-share>{_e(placement_text(row.get("placement")))}</td>'
            + f'<td class="muted">{_e(_ago(row.get("last_refresh"), now))}</td>'
            f'<td class="muted">{_e(_ago(row.get("last_used"), now))}</td></tr>')
    out.append("</tbody></table>")
    sources = {(r.get("rate_limits") or {}).get("source") for r in rows} - {None}
    if sources:
        out.append('<p class="muted">Quota windows come from the upstream\'s '
                   "<code>x-codex-*</code> answer headers, or from its usage endpoint for "
                   "accounts not used lately.</p>")
    out.append("</section>")
    return "".join(out)


def quota_bar(window: dict | None, name: str, now: float) -> str:
    """One quota window as a bar (``div.bar`` with ``data-window``) and its text."""
    if not isinstance(window, dict) or not isinstance(window.get("used_percent"), (int, float)):
        return '<span class="muted">unknown</span>'
    used = float(window["used_percent"])
    width = min(max(used, 0.0), 100.0)
    level = "ok" if used < 70 else "warn" if used < 90 else "bad"
    text = f"{used:g}% of {window_label(window, name)}"
    reset = window.get("reset_at")
    if isinstance(reset, (int, float)):
        text += f" · resets in {format_duration(reset - now)}"
    return (f'<div class="quota"><div class="bar" data-window="{_e(name)}" role="meter" '
            f'aria-valuemin="0" aria-valuemax="100" aria-valuenow="{width:g}" '
            f'aria-label="{_e(name)} quota window"><span class="lvl-{level}" '
            f'style="width:{width:.1f}%"></span></div><small>{_e(text)}</small></div>')


def _cooldown(until, now: float) -> str:
    if not isinstance(until, (int, float)) or until <= now:
        return "-"
    clock = time.strftime("%H:%M UTC", time.gmtime(until))
    return f"{format_duration(until - now)} (until {clock})"


# -- client keys and their limits -------------------------------------------------

_LIMIT_LABELS = (("tokens_per_day", "tokens today"), ("tokens_per_week", "tokens this week"),
                 ("requests_per_minute", "requests this minute"),
                 ("concurrency", "answers in flight"))


def _keys(reports: list[dict], now: float) -> str:
    if not any(r.get("limits") or r.get("status") != "active" or r.get("models")
               for r in reports):
        return ""
    out = ['<section><h2>Client keys and their limits</h2><table id="keys"><thead><tr>'
           "<th>Key</th><th>State</th><th>Models</th>"
           + "".join(f"<th>{_e(label.capitalize())}</th>" for _, label in _LIMIT_LABELS)
           + "</tr></thead><tbody>"]
    for r in reports:
        limits = r.get("limits") or {}
        state = "ok" if r.get("status") == "active" else "disabled"
        expires = r.get("expires_at")
        out.append(
            f'<tr data-key="{_e(r.get("id"))}"><td><div>{_e(r.get("name"))}</div>'
            f'<small class="mono muted">{_e(r.get("id"))}</small></td>'
            f'<td><span class="badge state-{state}">{_e(r.get("status"))}</span>'
            f'{f"<br><small class=muted>until {_e(_utc(expires))}</small>" if expires else ""}'
            f'</td><td>{_e(", ".join(r.get("models") or []) or "all")}</td>'
            + "".join(f"<td>{limit_bar(limits.get(name), name, label, now)}</td>"
                      for name, label in _LIMIT_LABELS) + "</tr>")
    out.append("</tbody></table></section>")
    return "".join(out)


def limit_bar(limit: dict | None, name: str, label: str, now: float) -> str:
    """One key limit as a bar (``div.bar`` with ``data-limit``) and its text."""
    if not isinstance(limit, dict):
        return '<span class="muted">no limit</span>'
    used = limit.get("used", limit.get("in_flight", 0))
    cap = limit.get("limit") or 1
    pct = min(max(used / cap * 100, 0.0), 100.0)
    level = "ok" if pct < 70 else "warn" if pct < 100 else "bad"
    text = f"{used:,} of {cap:,} {label}"
    reset = limit.get("resets_at")
    if isinstance(reset, (int, float)) and reset > now:
        text += f" · resets in {format_duration(reset - now)}"
    return (f'<div class="quota"><div class="bar" data-limit="{_e(name)}" role="meter" '
            f'aria-valuemin="0" aria-valuemax="{cap}" aria-valuenow="{used}" '
            f'aria-label="{_e(label)}"><span class="lvl-{level}" style="width:{pct:.1f}%">'
            f'</span></div><small>{_e(text)}</small></div>')


# -- usage ------------------------------------------------------------------------

def _usage(rows: list[Aggregate]) -> str:
    if not rows:
        return '<p class="empty">No requests.</p>'
    out = ['<table><thead><tr><th>Key</th><th class="num">Requests</th>'
           '<th class="num">Errors</th><th class="num">Input</th><th class="num">Cached</th>'
           '<th class="num">Output</th><th class="num">Cache hit</th>'
           '<th class="num">Cache breaks</th><th class="num">TTFB p50</th></tr></thead><tbody>']
    for r in rows:
        ratio = r.cache_hit_ratio
        ttfb = r.median_ttfb_ms
        out.append(
            f'<tr><td class="mono">{_e(r.group or "(no key)")}</td>'
            f'<td class="num">{r.requests:,}</td><td class="num">{r.errors:,}</td>'
            f'<td class="num">{r.input_tokens:,}</td><td class="num">{r.cached_tokens:,}</td>'
            f'<td class="num">{r.output_tokens:,}</td>'
            f'<td class="num">{"-" if ratio is None else f"{ratio * 100:.1f}%"}</td>'
            f'<td class="num">{_breaks(r)}</td>'
            f'<td class="num">{"-" if ttfb is None else f"{ttfb:.0f} ms"}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _breaks(r: Aggregate, top: int = 3) -> str:
    """The count and its most frequent causes: ``12 <small>content 8 · tools 4</small>``."""
    if not r.breaks:
        return "0"
    causes = " · ".join(f"{_e(cause)} {n:,}" for cause, n in r.causes[:top])
    return f'{r.breaks:,} <small class="muted">{causes}</small>'


def chart(hourly: list[Aggregate], now: float, hours: int = 48) -> str:
    """Hourly cache-hit ratio as an inline SVG bar chart (an hour without input
    tokens has no bar; each bar's ``<title>`` gives the numbers)."""
    width, height, left, bottom, top = 960, 220, 40, 24, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    by_hour = {a.group: a for a in hourly}
    start = int(now // 3600 - hours + 1) * 3600
    slot = plot_w / hours
    parts = [f'<svg id="cache-chart" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="cache-hit ratio per hour" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - pct / 100)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#eaecf0"/><text x="{left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{pct}%</text>')
    bars = 0
    for i in range(hours):
        t = start + i * 3600
        key = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(t))
        x = left + i * slot
        if i % 6 == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{time.strftime("%d %H:00", time.gmtime(t))}</text>')
        agg = by_hour.get(key)
        ratio = agg.cache_hit_ratio if agg else None
        if ratio is None:
            continue
        bars += 1
        h = max(plot_h * min(ratio, 1.0), 1.0)
        parts.append(
            f'<rect class="hit" x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(slot - 2, 1):.1f}" height="{h:.1f}" rx="2" fill="#2e90fa">'
            f"<title>{_e(key)}: {ratio * 100:.1f}% of {agg.input_tokens:,} input tokens cached "
            f"({agg.requests} requests)</title></rect>")
    if not bars:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
                     'text-anchor="middle">no requests with input tokens in this period</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- errors -----------------------------------------------------------------------

def _errors(rows: list[UsageRow]) -> str:
    if not rows:
        return ('<section><h2>Recent errors</h2><p class="empty">No errors in the last 7 '
                "days.</p></section>")
    out = ['<section><h2>Recent errors</h2><table id="errors"><thead><tr><th>When (UTC)</th>'
           "<th>Key</th><th>Account</th><th>Endpoint</th><th>Model</th>"
           '<th class="num">Status</th><th>Outcome</th><th>Code</th></tr></thead><tbody>']
    for r in rows:
        out.append(
            f"<tr><td>{_e(_utc(r.ts))}</td><td class=\"mono\">{_e(r.key_id or '-')}</td>"
            f"<td class=\"mono\">{_e(r.account or '-')}</td>"
            f"<td>{_e(r.dialect)} / {_e(r.transport)}</td><td>{_e(r.model or '-')}</td>"
            f'<td class="num">{r.status}</td><td>{_e(r.outcome)}</td>'
            f"<td class=\"mono\">{_e(r.error_code or '-')}</td></tr>")
    out.append("</tbody></table></section>")
    return "".join(out)


# -- helpers ----------------------------------------------------------------------

def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _ago(t, now: float) -> str:
    if not isinstance(t, (int, float)) or t <= 0:
        return "-"
    return "just now" if now - t < 5 else f"{format_duration(now - t)} ago"
