"""gateway.policy.gate
~~~~~~~~~~~~~~~~~~~~~~
The one check every request passes before its upstream request (the executor
calls it for every dialect and transport), and the settlement when its answer
ends.

``admit`` refuses, as a ``GatewayError`` each dialect renders in its own shape:
an expired or revoked key (401), a model outside the key's list (403, naming
the allowed ones), a limit (429 with ``Retry-After``, naming the limit and its
reset). An admitted request of a key with limits holds a lease in the shared
counters; the request record's end (``RequestRecord.finish``, exactly once,
whatever way the answer ends) queues its settlement: the lease ends and the
answer's input + output tokens are charged. Settlements are written by one
background thread per process, never on a relay loop.

A key without a policy costs one dictionary lookup. When the counters cannot be
reached (Redis down) requests are served without the counted limits, logged
once per outage: sharing must not stop the owner's own tools.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import GatewayError
from . import admission
from .counters import _Forks
from .model import Policy, format_time
from .store import NO_POLICY, PolicyStore

log = logging.getLogger("gateway.policy")


class Gate:
    def __init__(self, policies: PolicyStore, counters, clock: Callable[[], float] = time.time):
        self.policies = policies
        self.counters = counters
        self.clock = clock
        self._settler = _Settler(counters)
        self._down = False

    def policy(self, principal: str | None) -> Policy:
        return self.policies.get(principal) if principal is not None else NO_POLICY

    def check_key(self, principal: str | None) -> Policy:
        """The key's policy; a 401 when it is revoked or expired."""
        policy = self.policy(principal)
        if policy is not NO_POLICY:
            _check_key(policy, self.clock())
        return policy

    def shows_quota(self, principal: str | None) -> bool:
        return self.policy(principal).show_quota

    def admit(self, principal: str | None, model: str, body: dict, record,
              count: bool = True) -> Policy:
        """Let the request through (its key's policy) or raise; *count* False (a
        prewarm, which costs nothing): only the key and the model are checked."""
        policy = self.policy(principal)
        if policy is NO_POLICY:
            return policy
        now = self.clock()
        _check_key(policy, now)
        if not policy.allows(model):
            raise GatewayError(
                403, f"This key may not use the model '{model}'. Allowed: "
                f"{', '.join(policy.models)}.", code="model_not_allowed", param="model")
        if not (count and policy.counted):
            return policy
        estimate = admission.estimate_tokens(body) if (
            policy.tokens_per_day is not None or policy.tokens_per_week is not None) else 0
        plan = admission.plan(policy, principal, os.urandom(8).hex(), now, estimate)
        try:
            refused, seen = self.counters.admit(plan)
        except Exception as exc:  # noqa: BLE001 - StateUnavailable, sqlite3.Error
            self._outage(exc)
            return policy
        if self._down:
            self._down = False
            log.warning("key limits are counted again")
        if refused is not None:
            raise admission.refusal(plan, refused, seen)
        record.sinks = (*record.sinks, _Ticket(plan, self._settler))
        return policy

    def _outage(self, exc: Exception) -> None:
        if not self._down:
            self._down = True
            log.error("key limit counters cannot be reached (%s): requests are served without "
                      "their counted limits until they answer again", exc.__class__.__name__)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued settlement is written (tests, shutdown)."""
        self._settler.flush(timeout)


def _check_key(policy: Policy, now: float) -> None:
    if policy.revoked:
        raise GatewayError(401, "This API key has been revoked.", code="key_revoked")
    if policy.expired(now):
        raise GatewayError(401, f"This API key expired at {format_time(policy.expires_at)}.",
                           code="key_expired")


class _Ticket:
    """A record sink: the admitted request's plan, settled when the record finishes."""

    __slots__ = ("plan", "settler")

    def __init__(self, plan: admission.Plan, settler: "_Settler"):
        self.plan, self.settler = plan, settler

    def __call__(self, record) -> None:
        self.settler.put(self.plan, record)


class _Settler:
    """Settlements, written in order by one daemon thread per process."""

    def __init__(self, counters):
        self.counters = counters
        self._queue: deque = deque()
        self._wake = threading.Condition()
        self._forks: int | None = None  # the thread runs in this process
        self._busy = False

    def put(self, plan: admission.Plan, record) -> None:
        tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
        self._queue.append((plan, tokens))
        if self._forks != _Forks.count:
            self._start()
        with self._wake:
            self._wake.notify()

    def _start(self) -> None:
        with self._wake:
            if self._forks == _Forks.count:
                return
            self._forks = _Forks.count
            threading.Thread(target=self._run, name="policy-settle", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._busy = False
                    self._wake.notify_all()
                    self._wake.wait()
                self._busy = True
            plan, tokens = self._queue.popleft()
            try:
                self.counters.settle(plan.key_id, plan.lease_id, tokens, plan.buckets,
                                     time.time())
            except Exception as exc:  # noqa: BLE001 - the lease expires on its own
                log.warning("key limit settlement lost (%s)", exc.__class__.__name__)

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._wake:
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._wake.wait(0.05)


def open_gate(cfg, link=None) -> Gate:
    """The gate on the configured state backend's policies and counters."""
    from .counters import open_counters
    from .store import open_policies

    return Gate(open_policies(cfg, link), open_counters(cfg, link))
