"""gateway.record
~~~~~~~~~~~~~~~~
One record per client request, carried from the blueprint to the last byte.

Every dialect and transport fills the same dataclass, so the log line, the
usage rows and the metrics are all rendered from one set of facts instead of
each path counting for itself. A record is finished exactly once; what to do
with a finished record (log it, store it, count it) is the ``sinks``' job.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from .security import scrub

log = logging.getLogger("gateway.request")


class Outcome(str, enum.Enum):
    """How a request ended. ``str`` so it renders as its value in logs and JSON."""

    OPEN = "open"
    COMPLETED = "completed"            # response.completed reached the client
    INCOMPLETE = "incomplete"          # response.incomplete (length, content filter)
    STOP_SEQUENCE = "stop_sequence"    # the gateway ended it at an emulated stop sequence
    FAILED = "failed"                  # the upstream reported a failure in the stream
    TRUNCATED = "truncated"            # the upstream stream ended without a terminal event
    UPSTREAM_ERROR = "upstream_error"  # transport broke, or the upstream refused (HTTP error)
    CLIENT_CLOSED = "client_closed"    # the client went away before the end
    REJECTED = "rejected"              # refused by the gateway before any upstream request
    PREWARM = "prewarm"                # a WebSocket generate:false the upstream answered

    def __str__(self) -> str:  # pragma: no cover - str(Enum) is used by % formatting
        return self.value


@dataclass(slots=True)
class RequestRecord:
    """Who asked what, which account served it, how it ended, what it cost."""

    dialect: str                      # responses | chat | messages
    transport: str = "http"           # http | websocket
    key_id: str | None = None         # the client key's id, never the key
    model_asked: str | None = None
    model_sent: str | None = None
    continuity_source: str | None = None
    continuity_hash: str | None = None
    account: str | None = None
    placement: str | None = None      # why that account: sticky | headroom | high_water | failover
    upstream_transport: str | None = None
    status: int = 0
    outcome: Outcome = Outcome.OPEN
    error_code: str | None = None
    started_at: float = field(default_factory=time.time)        # wall clock, for storage
    started: float = field(default_factory=time.monotonic)      # for durations
    first_byte: float | None = None
    ended: float | None = None
    input_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    service_tier: str | None = None   # the tier the upstream reports (priority, default …)
    attempts: int = 0
    prefix: str | None = None         # append | new | rewrite (gateway.prefix)
    cache_break: str | None = None    # cause@k/n of a rewrite
    repaired: int = 0                 # items restored to the model's own form
    sinks: tuple[Callable[["RequestRecord"], None], ...] = field(default=(), repr=False)
    _finished: bool = field(default=False, repr=False)

    # -- filled while the request runs ---------------------------------------
    def mark_first_byte(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.monotonic()

    def add_usage(self, usage) -> None:
        """Take token counts from a Responses ``usage`` object (missing stays None)."""
        if not isinstance(usage, dict):
            return
        details = usage.get("input_tokens_details")
        details = details if isinstance(details, dict) else {}
        out_details = usage.get("output_tokens_details")
        out_details = out_details if isinstance(out_details, dict) else {}
        self.input_tokens = _int(usage.get("input_tokens"), self.input_tokens)
        self.cached_tokens = _int(details.get("cached_tokens"), self.cached_tokens)
        self.output_tokens = _int(usage.get("output_tokens"), self.output_tokens)
        self.reasoning_tokens = _int(out_details.get("reasoning_tokens"), self.reasoning_tokens)

    def add_response(self, response) -> None:
        """What a final Responses object says about cost: usage and the service tier."""
        if not isinstance(response, dict):
            return
        self.add_usage(response.get("usage"))
        tier = response.get("service_tier")
        if isinstance(tier, str) and tier:
            self.service_tier = tier[:32]

    def finish(self, status: int, outcome: Outcome, error_code: str | None = None,
               defer: Callable | None = None) -> None:
        """Close the record once and hand it to the sinks; later calls are no-ops.
        *defer*: run the sinks through it (``defer(callable)``: the relay loop's
        :class:`gateway.relay.Later`, so a slow store never holds the loop)."""
        if self._finished:
            return
        self._finished = True
        self.status = status
        self.outcome = outcome
        if error_code:
            self.error_code = error_code
        self.ended = time.monotonic()
        # What the client named reaches the log line, usage rows, metrics and the status
        # page only from here: bounded, control characters escaped (the one place).
        self.model_asked = scrub.client_text(self.model_asked, scrub.MAX_MODEL) or None
        self.model_sent = scrub.client_text(self.model_sent, scrub.MAX_MODEL) or None
        if defer is not None and self.sinks:
            defer(self._report)
        else:
            self._report()

    def _report(self) -> None:
        for sink in self.sinks:
            try:
                sink(self)
            except Exception:  # noqa: BLE001 - a sink must never fail a request
                log.exception("request record sink failed")

    @property
    def finished(self) -> bool:
        return self._finished

    # -- derived -------------------------------------------------------------
    @property
    def ttfb_ms(self) -> float | None:
        return None if self.first_byte is None else (self.first_byte - self.started) * 1000

    @property
    def duration_ms(self) -> float:
        end = self.ended if self.ended is not None else time.monotonic()
        return (end - self.started) * 1000

    def log_line(self) -> str:
        """The one line per request (docs/concepts/continuity.md). No secrets: ids and hashes."""
        model = self.model_asked or "-"
        if self.model_sent and self.model_sent != self.model_asked:
            model = f"{model}->{self.model_sent}"
        parts = [
            f"request dialect={self.dialect} transport={self.transport}",
            f"status={self.status} outcome={self.outcome.value}",
        ]
        if self.error_code:
            parts.append(f"code={self.error_code}")
        if self.cache_break:
            parts.append(f"cache_break={self.cache_break}")
        if self.repaired:
            parts.append(f"repaired={self.repaired}")
        parts += [
            f"model={model}",
            f"continuity={self.continuity_source or '-'} key={self.continuity_hash or '-'}",
            f"account={self.account or '-'}",
            f"upstream={self.upstream_transport or '-'} placement={self.placement or '-'}",
            f"cached_tokens={_dash(self.cached_tokens)} input_tokens={_dash(self.input_tokens)}"
            f" output_tokens={_dash(self.output_tokens)}",
            f"ttfb_ms={_dash(None if self.ttfb_ms is None else int(self.ttfb_ms))}"
            f" ms={int(self.duration_ms)}",
        ]
        if self.service_tier and self.service_tier != "default":
            parts.append(f"service_tier={self.service_tier}")
        return " ".join(parts)


def log_sink(record: RequestRecord) -> None:
    log.info("%s", record.log_line())


def _int(value, default):
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _dash(value) -> str:
    return "-" if value is None else str(value)
