"""gateway.executor
~~~~~~~~~~~~~~~~~~~~
The one place that talks to the outside, shared by every endpoint.

``open(call)`` resolves continuity, ranks the accounts for that key, sends to
the first usable one and fails over before the first byte reaches the client.
It returns an :class:`UpstreamStream` of parsed events. Endpoints only render.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import requests
import urllib3

from . import continuity
from .errors import GatewayError
from .sse import Event, SSEParser, make_event
from .upstream import UpstreamFailure, parse_failure, profiles_for
from .upstream import transport

log = logging.getLogger("gateway.request")

NEEDS_LOGIN_MESSAGE = (
    "Every configured upstream account needs a new login or is disabled. Run "
    "`codex-gateway accounts list` to see why, then `codex-gateway login` on the gateway host."
)
NO_ACCOUNT_MESSAGE = (
    "No upstream account is configured. Run `codex-gateway accounts import ~/.codex/auth.json`, "
    "`codex-gateway login` or `codex-gateway accounts add-key` on the gateway host."
)


@dataclass
class Call:
    """A normalised Responses request plus who sent it."""

    body: dict
    headers: Mapping
    principal: str | None
    endpoint: str = "responses"
    param_aliases: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)  # already dropped by a translator


class UpstreamStream:
    """An open upstream response: parsed events, then one log line."""

    def __init__(self, executor, call, resp, account, cont, dropped, started):
        self.executor = executor
        self.call = call
        self.resp = resp
        self.account = account
        self.continuity = cont
        self.dropped = dropped
        self.started = started
        self.cached_tokens: int | None = None
        self.outcome = "open"
        self._pump = None
        self._closed = False

    def client_headers(self) -> dict[str, str]:
        """Headers the gateway adds to its own response."""
        headers = {"x-gateway-continuity": self.continuity.source}
        if self.dropped:
            headers["x-gateway-dropped-params"] = ",".join(self.dropped)
        turn_state = self.resp.headers.get("x-codex-turn-state")
        if turn_state:
            headers["x-codex-turn-state"] = turn_state
        return headers

    def events(self, keepalive: float = 0.0) -> Iterator[Event | None]:
        """Yield upstream events; None is a keep-alive tick (nothing arrived for
        ``keepalive`` seconds). A failure or a stream that ends without a
        terminal event becomes a synthesised ``error`` event: never a silent end.
        """
        parser = SSEParser()
        terminal = False
        try:
            for chunk in self._chunks(keepalive):
                if chunk is None:
                    yield None
                    continue
                for event in parser.feed(chunk):
                    terminal = terminal or self._observe(event)
                    yield event
            for event in parser.flush():
                terminal = terminal or self._observe(event)
                yield event
            if not terminal:
                self.outcome = "truncated"
                yield error_event("stream_truncated",
                                  "The upstream stream closed before response.completed.")
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                OSError) as exc:
            if not terminal:
                self.outcome = "upstream_error"
                yield error_event(*_transport_error(exc))

    def _chunks(self, keepalive: float):
        if keepalive <= 0:
            yield from transport.iter_raw(self.resp)
            return
        self._pump = pump = transport.Pump(self.resp)
        read_timeout = self.executor.config.upstream.read_timeout
        silent = 0.0
        while True:
            item = pump.get(keepalive)
            if item is None:
                silent += keepalive
                if silent >= read_timeout:
                    raise requests.exceptions.ReadTimeout("upstream idle")
                yield None
                continue
            if item is transport.EOF_MARK:
                return
            if isinstance(item, BaseException):
                raise item
            silent = 0.0
            yield item

    def _observe(self, event: Event) -> bool:
        kind = event.type
        if kind == "response.completed" or kind == "response.incomplete":
            data = event.data or {}
            usage = (data.get("response") or {}).get("usage") or {}
            details = usage.get("input_tokens_details") or {}
            cached = details.get("cached_tokens")
            if isinstance(cached, int):
                self.cached_tokens = cached
            self.outcome = "completed" if kind == "response.completed" else "incomplete"
            return True
        if kind in ("response.failed", "error"):
            self.outcome = "failed"
            self._report_in_stream_failure(event.data or {})
            return True
        return False

    def _report_in_stream_failure(self, data: dict) -> None:
        """A quota or rate limit announced inside a 200 stream still cools the account."""
        err = event_error(data)
        if err.status == 429:
            retry_at = parse_failure(429, json.dumps({"error": _error_payload(data)}).encode(),
                                     {}).retry_at
            self.executor.pool.record_failure(self.account, 429, err.code,
                                              retry_at or time.time() + 30)

    def close(self, outcome: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if outcome:
            self.outcome = outcome
        elif self.outcome == "open":
            self.outcome = "client_closed"
        if self._pump is not None:
            self._pump.close()
        else:
            transport.hard_close(self.resp)
        self.executor.log_request(self.call, self.continuity, self.account, 200,
                                  self.outcome, self.started, self.cached_tokens)


class Executor:
    def __init__(self, config, pool):
        self.config = config
        self.pool = pool
        self.profiles = profiles_for(config)

    def open(self, call: Call) -> UpstreamStream:
        """Send the call upstream; raise GatewayError if no account can serve it."""
        started = time.monotonic()
        cfg = self.config
        cont = continuity.resolve(call.body, call.headers, call.principal, cfg.continuity)
        model = call.body.get("model", "")
        accounts = self.pool.ranked(cont.key or "", model)
        if not accounts:
            if self.pool.records():
                err = GatewayError(503, NEEDS_LOGIN_MESSAGE, code="accounts_need_login")
            else:
                err = GatewayError(503, NO_ACCOUNT_MESSAGE, code="no_upstream_account")
            self.log_request(call, cont, None, err.status, err.code, started, None)
            raise err
        last: GatewayError | None = None
        cooling: list[float] = []
        for account in accounts:
            until = self.pool.cooldown_until(account)
            if until:
                cooling.append(until)
                continue
            try:
                stream = self._attempt(call, account, cont, started)
            except _Failover as fo:
                last = fo.error
                if fo.retry_at:
                    cooling.append(fo.retry_at)
                continue
            except GatewayError as err:
                self.log_request(call, cont, account, err.status, err.code, started, None)
                raise
            return stream
        err = last
        if err is None or (cooling and err.status == 429):
            err = all_cooling_error(cooling)
        self.log_request(call, cont, None, err.status, err.code, started, None)
        raise err

    def _attempt(self, call: Call, account, base_cont, started) -> UpstreamStream:
        cfg = self.config
        profile = self.profiles[account.kind]
        cont = continuity.bind_account(base_cont, account.id, call.principal, cfg.continuity)
        timeout = (cfg.upstream.connect_timeout, cfg.upstream.read_timeout)
        refreshed = retried_param = False
        while True:
            body, dropped = profile.prepare(call.body, cont)
            creds = self.pool.credentials(account)
            headers = profile.headers(creds, call.headers, cont)
            sent_at = time.time()
            try:
                resp = transport.post(profile.url(account), body, headers, timeout,
                                      cfg.upstream.pool_maxsize)
            except requests.exceptions.RequestException as exc:
                code, message = _transport_error(exc)
                status = 504 if "timeout" in code else 502
                self.pool.record_failure(account, status, code, time.time() + 5)
                raise _Failover(GatewayError(status, message, code=code)) from None
            if resp.status_code < 300:
                self.pool.record_success(account, resp.headers, sent_at)
                names = [call.param_aliases.get(p, p) for p in dropped]
                return UpstreamStream(self, call, resp, account, cont,
                                      _unique(call.dropped + names), started)
            failure = parse_failure(resp.status_code, resp.content, resp.headers)
            resp.close()
            if failure.status == 401 and not refreshed:
                refreshed = True
                if self.pool.refresh(account, creds.token):
                    continue
            if (failure.unsupported_param and not retried_param
                    and failure.unsupported_param in call.body
                    and failure.unsupported_param != "model"):
                retried_param = True
                profile.learn_unsupported(failure.unsupported_param)
                continue
            raise self._classify(account, failure)

    def _classify(self, account, failure: UpstreamFailure) -> Exception:
        """Decide: fail over to the next account, or answer the client now."""
        status = failure.status
        if status == 429 or status >= 500 or status in (401, 403, 408):
            retry_at = failure.retry_at
            if status == 429 and retry_at is None:
                retry_at = time.time() + 30
            self.pool.record_failure(account, status, failure.code or failure.type, retry_at)
            return _Failover(upstream_error(failure), retry_at if status == 429 else None)
        return upstream_error(failure)

    def collect(self, stream: UpstreamStream) -> dict:
        """Consume a stream and return the final Responses object (non-stream)."""
        items: dict[int, dict] = {}
        final = None
        try:
            for event in stream.events():
                kind = event.type
                data = event.data or {}
                if kind == "response.output_item.done":
                    idx = data.get("output_index")
                    if isinstance(idx, int) and isinstance(data.get("item"), dict):
                        items[idx] = data["item"]
                elif kind in ("response.completed", "response.incomplete"):
                    final = data.get("response")
                elif kind in ("response.failed", "error"):
                    raise event_error(data)
        finally:
            stream.close("completed" if final else None)
        if not isinstance(final, dict):
            raise GatewayError(502, "The upstream ended without a final response.",
                               code="stream_truncated")
        if not final.get("output") and items:
            final["output"] = [items[i] for i in sorted(items)]
        return final

    def log_request(self, call, cont, account, status, outcome, started, cached) -> None:
        log.info(
            "request endpoint=%s status=%s outcome=%s continuity=%s key=%s account=%s "
            "cached_tokens=%s ms=%d",
            call.endpoint, status, outcome, cont.source, cont.short_hash,
            account.id if account else "-", "-" if cached is None else cached,
            (time.monotonic() - started) * 1000,
        )


class _Failover(Exception):
    def __init__(self, error: GatewayError, retry_at: float | None = None):
        super().__init__(error.message)
        self.error = error
        self.retry_at = retry_at


def upstream_error(failure: UpstreamFailure) -> GatewayError:
    """Map an upstream failure to what the client sees."""
    status = failure.status
    retry_after = None
    if failure.retry_at:
        retry_after = max(1, int(failure.retry_at - time.time() + 0.999))
    if status == 429:
        return GatewayError(429, failure.message, code=failure.code or "rate_limit_exceeded",
                            retry_after=retry_after)
    if status in (401, 403):
        return GatewayError(503, "The upstream account was refused "
                            f"({status}: {failure.message}). Log the account in again with "
                            "`codex-gateway login`.", code="upstream_auth_failed")
    if status >= 500:
        return GatewayError(502, f"Upstream error {status}: {failure.message}",
                            code="upstream_error")
    return GatewayError(status, failure.message, code=failure.code, type=failure.type)


def all_cooling_error(cooling: list[float]) -> GatewayError:
    soonest = min(cooling) if cooling else time.time() + 30
    wait = max(1, int(soonest - time.time() + 0.999))
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(soonest))
    return GatewayError(429, f"Every upstream account is rate-limited or cooling down; "
                        f"the earliest is available again at {when} (in {wait} s).",
                        code="all_accounts_cooling_down", retry_after=wait)


def event_error(data: dict) -> GatewayError:
    """An in-stream failure as an HTTP error (used before any byte is sent)."""
    err = _error_payload(data)
    code = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message") or "The upstream reported a failure."
    status = {"context_length_exceeded": 400, "invalid_request": 400,
              "rate_limit_exceeded": 429, "insufficient_quota": 429,
              "usage_limit_reached": 429, "stream_truncated": 502,
              "upstream_timeout": 504}.get(code or "", 502)
    return GatewayError(status, str(message), code=code or "upstream_error")


def _error_payload(data: dict) -> dict:
    if data.get("type") == "error":
        return data.get("error") if isinstance(data.get("error"), dict) else data
    return (data.get("response") or {}).get("error") or {}


def error_event(code: str, message: str) -> Event:
    """A synthesised Responses ``error`` event."""
    return make_event({"type": "error", "code": code, "message": message, "param": None})


def _transport_error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "upstream_timeout", "Timed out connecting to the upstream."
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        return "upstream_timeout", "The upstream stopped sending data (read timeout)."
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "upstream_unreachable", "Cannot reach the upstream (connection failed or refused)."
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return "upstream_connection_lost", "The upstream connection broke mid-stream."
    return "upstream_error", f"Upstream request failed: {exc.__class__.__name__}."


def _unique(names: list) -> list:
    seen: dict = {}
    for n in names:
        seen.setdefault(n, None)
    return list(seen)
