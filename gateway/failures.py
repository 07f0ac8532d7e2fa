"""gateway.failures
~~~~~~~~~~~~~~~~~~~
Every way the upstream can fail, read once and mapped to what the client sees.

Three sources of failure meet here: an HTTP error answer, a transport error
(``gateway.errors.TransportError``) and an in-stream ``error`` /
``response.failed`` event. Each becomes an :class:`UpstreamFailure` (what the
executor needs to decide: cool the account? fail over?) and then one
``GatewayError`` (what the client is told). The code -> status table is the
protocol's (``gateway.protocol.STATUS_BY_CODE``), shared by every transport.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from . import jsonio
from .security import scrub
from .errors import GatewayError, TransportError
from .protocol import STATUS_BY_CODE, error_of, status_of
from .sse import Event, make_event

USAGE_LIMIT_CODES = frozenset({"usage_limit_reached", "usage_not_included"})
# A connection that broke (reset, body cut short): about the path to the upstream, not
# the account. Before the answer starts the executor tries such an attempt once more on
# the same account; a broken upstream WebSocket falls back to HTTP (upstream/wire.py).
BROKEN_CODES = frozenset({"upstream_connection_lost", "stream_truncated"})
# Server errors that say this attempt was unlucky, not that the account is bad: the
# executor sends it once more to the same account before cooling it. Not: a timeout
# (it already waited), nothing listening (unreachable), an overload (529: a retry adds
# load) or an answer that names its own wait (Retry-After).
RETRIED_STATUSES = frozenset({500, 502, 503})
NOT_RETRIED_CODES = frozenset({"upstream_unreachable", "upstream_timeout",
                               "upstream_connect_timeout"})
DEFAULT_RATE_LIMIT_WAIT = 30.0

_UNSUPPORTED = re.compile(r"(?:Unsupported|Unknown|Unrecognized) parameter:?\s*'?\"?([A-Za-z0-9_.\[\]]+)")
_TRY_AGAIN = re.compile(r"try again in ([0-9.]+)\s*(ms|s)", re.I)


@dataclass
class UpstreamFailure:
    """An upstream failure, read once, with what the executor needs to decide."""

    status: int
    message: str
    code: str | None = None
    type: str | None = None
    retry_at: float | None = None  # epoch seconds when it is worth trying again
    unsupported_param: str | None = None
    in_stream: bool = False

    @property
    def fails_over(self) -> bool:
        """Another account may succeed: a limit, a server error, a refused login."""
        return self.status in (401, 403, 408, 429) or self.status >= 500

    @property
    def retried_on_same_account(self) -> bool:
        """Worth one more try on the same account before it cools (and its
        conversations lose their prompt cache by moving)."""
        if self.code in BROKEN_CODES:
            return True
        return (self.status in RETRIED_STATUSES and self.code not in NOT_RETRIED_CODES
                and (self.retry_at is None or self.retry_at <= time.time() + 1))

    @property
    def cool_until(self) -> float | None:
        """When this account is worth trying again (None: the backoff decides)."""
        if self.status == 429 and self.retry_at is None:
            return time.time() + DEFAULT_RATE_LIMIT_WAIT
        return self.retry_at


def from_http(status: int, content: bytes, headers) -> UpstreamFailure:
    """Read an HTTP error answer of any of the shapes the backends use."""
    body = None
    try:
        body = jsonio.loads(content or b"null")
    except ValueError:
        pass
    message = code = kind = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message, code, kind = err.get("message"), err.get("code"), err.get("type")
        if kind in USAGE_LIMIT_CODES and not code:
            code = kind
    elif isinstance(err, str):
        message = err
    if message is None and isinstance(body, dict) and isinstance(body.get("detail"), str):
        message = body["detail"]
    if message is None:
        message = (content or b"").decode("utf-8", "replace")[:500] or f"HTTP {status}"
    # Upstream text reaches clients, logs and metrics only through the scrubber.
    failure = UpstreamFailure(status, scrub.upstream_text(message), scrub.upstream_code(code),
                              scrub.upstream_code(kind))
    m = _UNSUPPORTED.search(failure.message) if status == 400 else None
    if m:
        failure.unsupported_param = m.group(1)
    failure.retry_at = _retry_at(err if isinstance(err, dict) else {}, headers, failure.message)
    return failure


def from_event(data: dict | None) -> UpstreamFailure:
    """An in-stream ``error`` or ``response.failed`` event as a failure."""
    err = error_of(data or {})
    code = scrub.upstream_code(err.get("code"))
    kind = scrub.upstream_code(err.get("type"))
    if code is None and kind in STATUS_BY_CODE:
        code = kind
    message = err.get("message") if isinstance(err.get("message"), str) else None
    message = scrub.upstream_text(message) if message is not None else None
    status = status_of(code)
    return UpstreamFailure(status, message or "The upstream reported a failure.",
                           code or "upstream_error", kind, _retry_at(err, None, message or ""),
                           in_stream=True)


def client_error(failure: UpstreamFailure) -> GatewayError:
    """What the client is told about an upstream failure."""
    status = failure.status
    retry_after = None
    if failure.retry_at:
        retry_after = max(1, int(failure.retry_at - time.time() + 0.999))
    if status == 429:
        return GatewayError(429, failure.message, code=failure.code or "rate_limit_exceeded",
                            retry_after=retry_after)
    if status in (401, 403) and not failure.in_stream:
        return GatewayError(503, "The upstream account was refused "
                            f"({status}: {failure.message}). Log the account in again with "
                            "`codex-gateway login`.", code="upstream_auth_failed")
    if status == 529:
        return GatewayError(529, failure.message, code=failure.code or "overloaded",
                            type="overloaded_error")
    if status >= 500:
        message = failure.message if failure.in_stream else \
            f"Upstream error {status}: {failure.message}"
        return GatewayError(504 if status == 504 else 502, message,
                            code=failure.code if failure.in_stream else "upstream_error")
    return GatewayError(status, failure.message, code=failure.code,
                        type=None if failure.in_stream else failure.type)


def in_stream(code: str | None, message: str = "") -> GatewayError:
    """What the client is told about an in-stream failure that names *code*: the
    status, type and code the same failure has over HTTP before the first byte
    (a dialect that renders it mid-stream derives its own shape from this)."""
    return client_error(UpstreamFailure(status_of(code), message or "The upstream reported a "
                                        "failure.", code or "upstream_error", in_stream=True))


def transport_failure(exc: TransportError) -> UpstreamFailure:
    status = 504 if exc.code == "upstream_timeout" else 502
    return UpstreamFailure(status, exc.message, exc.code, in_stream=True)


def transport_error(exc: TransportError) -> GatewayError:
    return client_error(transport_failure(exc))


def all_cooling(cooling: list[float]) -> GatewayError:
    """Several accounts could serve and every one is limited or cooling down."""
    soonest = min(cooling) if cooling else time.time() + DEFAULT_RATE_LIMIT_WAIT
    wait = max(1, int(soonest - time.time() + 0.999))
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(soonest))
    return GatewayError(429, f"Every upstream account is rate-limited or cooling down; "
                        f"the earliest is available again at {when} (in {wait} s).",
                        code="all_accounts_cooling_down", retry_after=wait)


def cooling(until: float, reason: str | None) -> GatewayError:
    """The only account that could serve is cooling down (no upstream call made now)."""
    wait = max(1, int(until - time.time() + 0.999))
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(until))
    if reason in USAGE_LIMIT_CODES or reason in ("rate_limit_exceeded", "insufficient_quota"):
        return GatewayError(429, f"The upstream account's limit was reached ({reason}); "
                            f"it resets at {when} (in {wait} s).", code=reason, retry_after=wait)
    return GatewayError(429 if reason and STATUS_BY_CODE.get(reason) == 429 else 503,
                        f"The upstream account is cooling down after an error "
                        f"({reason or 'unknown'}); it is tried again at {when} (in {wait} s).",
                        code="account_cooling_down", retry_after=wait)


def error_event(code: str, message: str) -> Event:
    """A synthesised Responses ``error`` event (a stream that broke or ended early)."""
    return make_event({"type": "error", "code": code, "message": message, "param": None})


def _retry_at(err: dict, headers, message: str) -> float | None:
    now = time.time()
    resets_at = err.get("resets_at")
    if isinstance(resets_at, (int, float)) and resets_at > 0:
        return float(resets_at)
    resets_in = err.get("resets_in_seconds")
    if isinstance(resets_in, (int, float)) and resets_in >= 0:
        return now + float(resets_in)
    retry_after = headers.get("Retry-After") if headers is not None else None
    if retry_after:
        try:
            return now + float(retry_after)
        except ValueError:
            pass
    m = _TRY_AGAIN.search(message or "")
    if m:
        value = float(m.group(1))
        return now + (value / 1000 if m.group(2).lower() == "ms" else value)
    return None
