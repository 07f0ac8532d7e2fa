"""gateway.usage.metrics
~~~~~~~~~~~~~~~~~~~~~~~~
Prometheus metrics, correct across gunicorn workers.

Under gunicorn ``PROMETHEUS_MULTIPROC_DIR`` is set (by the gunicorn config,
before anything imports ``prometheus_client``), so every worker writes its
counters, histograms and gauges to files there and ``/metrics`` — answered by
whichever worker — sums them all (``MultiProcessCollector``). Without it (the
in-process tests, ``create_app`` elsewhere) each :class:`Metrics` has its own
registry, so two apps in one process never share a series.

Fed by a request-record sink (requests, status, outcome, timings, tokens),
the account pool's observers (upstream errors, token refreshes), the usage
writer (rows written and dropped) and a WSGI middleware (open SSE streams and
WebSockets, ``livesum`` gauges: a dead worker's share disappears with it).
Account state and quota gauges are read from the shared health store when
scraped, so they need no per-worker bookkeeping at all.

Labels are bounded: key ids and account ids come from configuration, never
from what a client sends; a missing one is ``-``.
"""
from __future__ import annotations

import logging
import os
import time

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest)
from prometheus_client.core import GaugeMetricFamily

from ..security import scrub
from ..security.limits import ClosingBody
from ..prefix.fingerprint import CAUSES

log = logging.getLogger("gateway.usage")

PREFIX = "codex_gateway"
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
TOKEN_KINDS = ("input", "cached", "output", "reasoning")
ACCOUNT_STATES = ("ok", "cooling", "needs_login", "disabled")


def multiprocess_dir() -> str | None:
    """The multiprocess directory, if prometheus_client really runs in that mode
    (it decides when first imported: a variable set later changes nothing)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path or not os.path.isdir(path):
        return None
    from prometheus_client import values

    if getattr(values.ValueClass, "__name__", "") != "MmapedValue":
        log.warning("PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: "
                    "/metrics shows this worker only")
        return None
    return path


class Metrics:
    """The gateway's metric objects plus what renders ``/metrics``."""

    def __init__(self):
        # No *_created series: they double the output and multiprocess mode has none.
        disable_created_metrics()
        self.multiprocess = multiprocess_dir() is not None
        reg = None if self.multiprocess else CollectorRegistry()
        self.registry = reg
        p = PREFIX
        self.requests = Counter(f"{p}_requests", "Finished client requests.",
                                ("dialect", "transport", "status", "outcome", "key_id", "account"),
                                registry=reg)
        self.ttfb = Histogram(f"{p}_ttfb_seconds", "Time to the first upstream event.",
                              ("dialect", "transport"), buckets=TTFB_BUCKETS, registry=reg)
        self.duration = Histogram(f"{p}_request_duration_seconds", "Whole request duration.",
                                  ("dialect", "transport"), buckets=DURATION_BUCKETS,
                                  registry=reg)
        self.tokens = Counter(f"{p}_tokens", "Tokens the upstream reported, by kind "
                              "(cached is part of input, reasoning part of output).",
                              ("kind", "key_id", "account"), registry=reg)
        self.upstream_errors = Counter(f"{p}_upstream_errors", "Upstream failures that "
                                       "cooled an account or needed a login, by code.",
                                       ("code", "account"), registry=reg)
        self.refreshes = Counter(f"{p}_token_refreshes", "Access-token refreshes by result.",
                                 ("account", "result"), registry=reg)
        self.usage_written = Counter(f"{p}_usage_rows_written", "Usage rows stored.",
                                     registry=reg)
        self.usage_dropped = Counter(f"{p}_usage_rows_dropped", "Usage rows that could not be "
                                     "stored (queue_full, store_error).", ("reason",),
                                     registry=reg)
        self.open_streams = Gauge(f"{p}_open_streams", "SSE answers being sent now.",
                                  multiprocess_mode="livesum", registry=reg)
        self.open_websockets = Gauge(f"{p}_open_websockets", "Client WebSockets open now.",
                                     multiprocess_mode="livesum", registry=reg)
        self.cache_breaks = Counter(f"{p}_cache_breaks", "Turns that rewrote the prompt prefix "
                                    "the upstream had cached, by cause (docs/cache-breaks.md).",
                                    ("cause",), registry=reg)
        self.repaired = Counter(f"{p}_cache_repaired_items", "Items restored to the form the "
                                "model produced (gateway.prefix.repair).", registry=reg)
        self._breaks = {cause: self.cache_breaks.labels(cause) for cause in CAUSES}
        for reason in ("queue_full", "store_error"):
            self.usage_dropped.labels(reason)  # present at 0, so an alert can watch it
        self._children: dict = {}

    # -- feeding --------------------------------------------------------------
    def sink(self, rec) -> None:
        """A RequestRecord sink. Label children are cached (``labels()`` validates and
        locks on every call); the label sets are bounded, so the caches are too."""
        key, account = rec.key_id or "-", rec.account or "-"
        outcome = getattr(rec.outcome, "value", rec.outcome)
        cache = self._children
        labels = (rec.dialect, rec.transport, rec.status, outcome, key, account)
        child = cache.get(labels)
        if child is None:
            child = cache[labels] = self.requests.labels(
                rec.dialect, rec.transport, str(rec.status), outcome, key, account)
        child.inc()
        timing = (rec.dialect, rec.transport)
        timers = cache.get(timing)
        if timers is None:
            timers = cache[timing] = (self.ttfb.labels(*timing), self.duration.labels(*timing))
        ttfb = rec.ttfb_ms
        if ttfb is not None:
            timers[0].observe(ttfb / 1000)
        timers[1].observe(rec.duration_ms / 1000)
        who = (key, account)
        tokens = cache.get(who)
        if tokens is None:
            tokens = cache[who] = tuple(self.tokens.labels(kind, key, account)
                                        for kind in TOKEN_KINDS)
        for counter, value in zip(tokens, (rec.input_tokens, rec.cached_tokens,
                                           rec.output_tokens, rec.reasoning_tokens)):
            if value:
                counter.inc(value)
        if rec.cache_break:
            self._breaks[rec.cache_break.split("@", 1)[0]].inc()
        if rec.repaired:
            self.repaired.inc(rec.repaired)

    def upstream_failure(self, account_id: str, status: int, code: str) -> None:
        self.upstream_errors.labels(scrub.metric_code(code or f"http_{status}"), account_id).inc()

    def refresh(self, account_id: str, result: str) -> None:
        self.refreshes.labels(account_id, result).inc()

    def dropped(self, reason: str, n: int) -> None:
        self.usage_dropped.labels(reason).inc(n)

    def written(self, n: int) -> None:
        self.usage_written.inc(n)

    # -- exposing -------------------------------------------------------------
    def render(self, accounts=None) -> tuple[bytes, str]:
        """The text exposition; *accounts* is a callable returning ``accounts list``
        rows (read at scrape time from the shared health store)."""
        registry = CollectorRegistry()
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            for metric in (self.requests, self.ttfb, self.duration, self.tokens,
                           self.upstream_errors, self.refreshes, self.usage_written,
                           self.usage_dropped, self.open_streams, self.open_websockets,
                           self.cache_breaks, self.repaired):
                registry.register(metric)
        if accounts is not None:
            registry.register(AccountCollector(accounts))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class AccountCollector:
    """Account state and quota gauges, computed when scraped (every worker sees
    the same health store, so any worker gives the same answer)."""

    def __init__(self, rows):
        self.rows = rows

    def collect(self):
        now = time.time()
        p = PREFIX
        state = GaugeMetricFamily(f"{p}_account_state", "1 for the account's current state.",
                                  labels=("account", "kind", "state"))
        cooldown = GaugeMetricFamily(f"{p}_account_cooldown_seconds",
                                     "Seconds until the account's cooldown ends (0: none).",
                                     labels=("account",))
        used = GaugeMetricFamily(f"{p}_account_quota_used_percent",
                                 "Share of the quota window used, as the upstream reports it.",
                                 labels=("account", "window"))
        reset = GaugeMetricFamily(f"{p}_account_quota_reset_timestamp_seconds",
                                  "When the quota window resets (unix time).",
                                  labels=("account", "window"))
        length = GaugeMetricFamily(f"{p}_account_quota_window_minutes",
                                   "Length of the quota window.", labels=("account", "window"))
        refreshed = GaugeMetricFamily(f"{p}_account_last_refresh_timestamp_seconds",
                                      "When the account's token was last refreshed.",
                                      labels=("account",))
        try:
            rows = self.rows()
        except Exception:  # noqa: BLE001 - a broken health store must not break /metrics
            log.exception("metrics: account rows unavailable")
            rows = []
        for row in rows:
            ident = row["id"]
            for name in ACCOUNT_STATES:
                state.add_metric((ident, row["kind"], name), 1.0 if row["state"] == name else 0.0)
            until = row.get("cooldown_until")
            cooldown.add_metric((ident,), max(until - now, 0.0) if until else 0.0)
            if row.get("last_refresh"):
                refreshed.add_metric((ident,), float(row["last_refresh"]))
            for window in ("primary", "secondary"):
                w = (row.get("rate_limits") or {}).get(window)
                if not isinstance(w, dict):
                    continue
                if isinstance(w.get("used_percent"), (int, float)):
                    used.add_metric((ident, window), float(w["used_percent"]))
                if isinstance(w.get("reset_at"), (int, float)):
                    reset.add_metric((ident, window), float(w["reset_at"]))
                if isinstance(w.get("window_minutes"), (int, float)):
                    length.add_metric((ident, window), float(w["window_minutes"]))
        yield from (state, cooldown, used, reset, length, refreshed)


class OpenConnections:
    """WSGI middleware: counts open SSE answers and WebSockets in livesum gauges.

    A WebSocket lives inside the application call (the session runs until the
    socket ends); an SSE answer lives until the server closes its iterable. The
    iterable is handed back as it is (its ``__iter__``), so a stream pays no
    extra Python frame per chunk."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            gauge = self.metrics.open_websockets
            gauge.inc()
            try:
                return self.app(environ, start_response)
            finally:
                gauge.dec()
        seen = []

        def watch(status, headers, exc_info=None):
            for name, value in headers:
                if name.lower() == "content-type" and value.startswith("text/event-stream"):
                    seen.append(True)
            return start_response(status, headers, exc_info)

        result = self.app(environ, watch)
        if not seen:
            return result
        self.metrics.open_streams.inc()
        return ClosingBody(result, self.metrics.open_streams.dec)
