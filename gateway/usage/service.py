"""gateway.usage.service
~~~~~~~~~~~~~~~~~~~~~~~~
One worker's usage machinery, built by ``create_app``: the store, the
background writer, the metrics, the quota poller — and what the app needs
from them (record sinks, a WSGI wrapper, the status page's data).
"""
from __future__ import annotations

import time

from . import report
from .metrics import Metrics, OpenConnections
from .quota import QuotaPoller
from .status_page import StatusData
from .store import open_usage
from .writer import UsageWriter

QUOTA_CHECK_EVERY = 60.0  # seconds between looks for stale quota windows
CHART_HOURS = 48


class UsageService:
    def __init__(self, config, pool, store=None, metrics: Metrics | None = None,
                 quota_get=None):
        self.config = config
        self.pool = pool
        self.metrics = metrics or Metrics()
        ucfg = config.usage
        self.store = store if store is not None else open_usage(config, pool.state)
        self.writer = None
        if ucfg.enabled:
            self.writer = UsageWriter(self.store, queue_size=ucfg.queue_size,
                                      batch_size=ucfg.batch_size,
                                      flush_seconds=ucfg.flush_seconds,
                                      retention_days=ucfg.retention_days,
                                      on_drop=self.metrics.dropped,
                                      on_written=self.metrics.written)
        self.poller = QuotaPoller(config, pool, get=quota_get)
        if self.writer is not None and ucfg.quota_poll_seconds > 0:
            self.writer.every(QUOTA_CHECK_EVERY, self.poller.check)
        pool.on_failure.append(self.metrics.upstream_failure)
        pool.on_refresh.append(self.metrics.refresh)

    @property
    def sinks(self) -> tuple:
        """Request-record sinks, in order: metrics first (in process, immediate),
        then the usage queue."""
        sinks = [self.metrics.sink]
        if self.writer is not None:
            sinks.append(self.writer.sink)
        return tuple(sinks)

    def wrap(self, wsgi_app):
        """The WSGI middleware that counts open streams and WebSockets."""
        return OpenConnections(wsgi_app, self.metrics)

    def render_metrics(self) -> tuple[bytes, str]:
        return self.metrics.render(self.pool.rows)

    def status_data(self, now: float | None = None) -> StatusData:
        now = time.time() if now is None else now
        data = StatusData(generated_at=now, accounts=self.pool.rows(),
                          chart_hours=CHART_HOURS)
        if self.writer is None:
            data.note = "Usage recording is off (usage.enabled = false)."
            return data
        try:
            store = self.store
            data.today = store.query(report.start_of_day(now), "key")
            data.week = store.query(now - 7 * 86400, "key")
            data.hourly = store.query(now - CHART_HOURS * 3600, "hour")
            data.errors = store.recent_errors(now - 7 * 86400, 20)
        except Exception as exc:  # noqa: BLE001 - the page still shows the accounts
            data.note = f"The usage store cannot be read ({exc.__class__.__name__})."
        return data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
