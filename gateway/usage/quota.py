"""gateway.usage.quota
~~~~~~~~~~~~~~~~~~~~~~
Quota windows per account: the ChatGPT usage endpoint for accounts whose
``x-codex-*`` headers are stale, and how a window is shown.

The Codex backend reports an account's two windows (``primary``: about 5
hours, ``secondary``: about a week) in the headers of every answer; the pool
stores them. An account nobody used for a while has no fresh headers, so the
poller asks ``GET {upstream.codex_usage_url}`` (by default
``https://chatgpt.com/backend-api/wham/usage``, what Codex CLI's ``/status``
reads) for it — at most once per ``usage.quota_poll_seconds`` per account
across every worker (a claim in the shared health store).

The endpoint is not documented and its shape is not verified here. What peers
and research notes report, and what :func:`parse_usage` accepts::

    {"plan_type": "plus",
     "rate_limit": {"primary_window":   {"used_percent": 6, "limit_window_seconds": 18000,
                                         "reset_after_seconds": 3600, "reset_at": 1738300000},
                    "secondary_window": {...}}}

Parsing is tolerant on purpose: ``rate_limit``/``rate_limits`` or the top
level; ``primary_window``/``primary`` (``secondary`` likewise); a window
length in ``limit_window_seconds``, ``window_seconds`` or ``window_minutes``;
the reset as ``reset_at``/``resets_at`` (unix seconds, milliseconds or ISO
8601) or ``reset_after_seconds``/``resets_in_seconds``; anything else is
ignored, and an answer with no usable window changes nothing.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime

from ..upstream.identity import identity_for

log = logging.getLogger("gateway.usage")

WINDOWS = ("primary", "secondary")
POLL_TIMEOUT = (5.0, 10.0)  # connect, read: the poll runs off the request path anyway


# -- parsing (pure) ---------------------------------------------------------------

def parse_usage(payload, now: float) -> tuple[dict, str | None]:
    """``({window: {used_percent, window_minutes, reset_at}}, plan_type)`` from an
    answer of the usage endpoint; ``({}, None)`` when nothing in it is usable."""
    if not isinstance(payload, dict):
        return {}, None
    plan = payload.get("plan_type") or payload.get("plan")
    plan = plan if isinstance(plan, str) and plan else None
    container = payload.get("rate_limit") or payload.get("rate_limits") or payload
    if not isinstance(container, dict):
        return {}, plan
    out = {}
    for name in WINDOWS:
        raw = container.get(f"{name}_window") or container.get(name)
        window = parse_window(raw, now)
        if window:
            out[name] = window
    return out, plan


def parse_window(raw, now: float) -> dict:
    """One window in the shape the pool stores for the headers."""
    if not isinstance(raw, dict):
        return {}
    out: dict = {}
    used = _number(_first(raw, "used_percent", "usedPercent", "percent_used"))
    if used is not None:
        out["used_percent"] = used
    seconds = _number(_first(raw, "limit_window_seconds", "window_seconds"))
    minutes = _number(raw.get("window_minutes"))
    if minutes is None and seconds is not None:
        minutes = seconds / 60
    if minutes is not None and minutes > 0:
        out["window_minutes"] = int(round(minutes))
    reset = _timestamp(_first(raw, "reset_at", "resets_at"))
    if reset is None:
        after = _number(_first(raw, "reset_after_seconds", "resets_in_seconds"))
        if after is not None and after >= 0:
            reset = now + after
    if reset is not None:
        out["reset_at"] = reset
    return out if "used_percent" in out else {}


def _first(raw: dict, *names):
    for name in names:
        if raw.get(name) is not None:
            return raw[name]
    return None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _timestamp(value) -> float | None:
    """Unix seconds from seconds, milliseconds or an ISO 8601 string."""
    if isinstance(value, str) and not _looks_numeric(value):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    number = _number(value)
    if number is None or number <= 0:
        return None
    return number / 1000 if number > 1e11 else number


def _looks_numeric(text: str) -> bool:
    return _number(text) is not None


# -- when to poll (pure) ------------------------------------------------------------

def is_stale(limits: dict | None, now: float, stale_after: float) -> bool:
    """True when an account's stored windows are missing or older than *stale_after*."""
    if not limits:
        return True
    observed = limits.get("observed_at")
    if not isinstance(observed, (int, float)):
        return True  # stored before observed_at existed: unknown age
    return now - observed >= stale_after


# -- showing a window (pure) --------------------------------------------------------

def window_label(window: dict | None, name: str) -> str:
    """``5h`` / ``7d`` from the window's length; the window's name without one."""
    minutes = (window or {}).get("window_minutes")
    if not isinstance(minutes, (int, float)) or minutes <= 0:
        return {"primary": "5h?", "secondary": "week?"}.get(name, name)
    if minutes % 1440 == 0:
        return f"{int(minutes // 1440)}d"
    if minutes % 60 == 0:
        return f"{int(minutes // 60)}h"
    return f"{int(minutes)}m"


def format_duration(seconds: float) -> str:
    """``3d4h``, ``1h05m``, ``12m``, ``now``."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return "now" if seconds == 0 else f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m"


def format_window(window: dict | None, name: str, now: float) -> str:
    """``12% of 5h, resets in 1h05m`` (``-`` when the window is unknown)."""
    if not window or window.get("used_percent") is None:
        return "-"
    text = f"{window['used_percent']:g}% of {window_label(window, name)}"
    reset = window.get("reset_at")
    if isinstance(reset, (int, float)):
        text += f", resets in {format_duration(reset - now)}"
    return text


def placement_text(placed: dict | None) -> str:
    """``62% (headroom 0.9)``, ``0% (draining: above the mark)``, ``-`` (not placed on)."""
    if not placed:
        return "-"
    text = f"{placed['share']:.0%}"
    standing = placed["standing"]
    if standing == "draining":
        return text + " (draining: above the mark)"
    if standing == "exhausted":
        return text + " (at its limit until the reset)"
    return text + (" (quota unknown)" if standing == "unknown"
                   else f" (headroom {placed['headroom']:g})")


# -- the poller -------------------------------------------------------------------

class QuotaPoller:
    """Fetches the usage endpoint for codex accounts whose headers are stale.

    ``check()`` is cheap and runs on the usage writer's thread every minute;
    an actual poll runs on a short-lived thread of its own, so a slow endpoint
    never delays the usage rows."""

    def __init__(self, config, pool, get=None, clock=time.time):
        self.config = config
        self.pool = pool
        self.url = config.upstream.usage_url
        self.interval = config.usage.quota_poll_seconds
        self.stale_after = config.usage.quota_stale_seconds
        self._get = get or _http_get
        self.clock = clock
        self._running = threading.Lock()

    def due(self) -> list:
        """Codex accounts whose stored windows are stale (no claim taken yet)."""
        if self.interval <= 0:
            return []
        now = self.clock()
        snap = self.pool.health.snapshot()
        out = []
        for account in self.pool.accounts():
            row = snap.get(account.id) or {}
            if account.kind != "codex" or row.get("needs_login"):
                continue
            if is_stale(row.get("rate_limits"), now, self.stale_after):
                out.append(account)
        return out

    def check(self) -> None:
        """Start a poll for the stale accounts unless one is still running."""
        accounts = self.due()
        if not accounts or not self._running.acquire(blocking=False):
            return
        threading.Thread(target=self._poll_all, args=(accounts,), name="quota-poll",
                         daemon=True).start()

    def _poll_all(self, accounts) -> None:
        try:
            for account in accounts:
                self.poll(account)
        finally:
            self._running.release()

    def poll(self, account) -> bool:
        """Ask the usage endpoint for one account (if no worker did recently)."""
        now = self.clock()
        try:
            if not self.pool.health.claim_quota_poll(account.id, now - self.interval):
                return False
        except Exception as exc:  # noqa: BLE001 - a state store that fails skips a poll, quietly
            log.warning("account %s: quota poll skipped, the state store failed (%s)",
                        account.id, exc.__class__.__name__)
            return False
        try:
            creds = self.pool.stored_credentials(account)  # never refreshes a token
            if creds is None or not creds.token:
                return False
            headers = {"Authorization": f"Bearer {creds.token}", "Accept": "application/json",
                       **identity_for(self.config).headers()}
            if creds.account_id:
                headers["chatgpt-account-id"] = creds.account_id
            status, payload = self._get(self.url, headers, POLL_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - an unreachable endpoint is not a request's error
            log.info("account %s: usage endpoint unreachable (%s)", account.id,
                     exc.__class__.__name__)
            return False
        if status != 200:
            log.info("account %s: usage endpoint answered %s", account.id, status)
            return False
        limits, plan = parse_usage(payload, self.clock())
        if not limits:
            log.info("account %s: usage endpoint answer has no quota window we can read",
                     account.id)
            return False
        limits = dict(limits, observed_at=self.clock(), source="usage_endpoint")
        if plan:
            limits["plan_type"] = plan
        self.pool.record_limits(account.id, limits)
        return True


def _http_get(url: str, headers: dict, timeout) -> tuple[int, object]:
    """GET *url*; ``(status, parsed JSON or None)``. ``requests`` is imported here
    so the pure parts of this module import nothing but the standard library."""
    import requests

    resp = requests.get(url, headers=headers, timeout=timeout, allow_redirects=False)
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    return resp.status_code, payload
