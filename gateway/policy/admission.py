"""gateway.policy.admission
~~~~~~~~~~~~~~~~~~~~~~~~~~~
The arithmetic of a key's limits, with no I/O: which windows a request falls
in, what it reserves, whether the counters let it through, and how a refusal
is worded (status, message, ``Retry-After``).

Windows (UTC):

* requests per minute: a sliding minute (any 60 s holds at most N requests);
* tokens per day: the UTC calendar day; tokens per week: the ISO week, Monday
  00:00 UTC. Tokens are input + output, charged when the answer ends, into the
  windows of the moment the request started (the usage rows' ``ts``).

Reservations keep concurrent answers from spending past a budget: each admitted
request of a key with a token budget reserves an estimate of its tokens (the
body's size / 4, plus ``max_output_tokens`` or ``OUTPUT_ALLOWANCE``) until it
ends. A request is let in while its budget's charged + reserved + own estimate
fit; when they do not, it is still let in if nothing else of the key is in
flight and the budget is not spent. So the last admitted request is always
alone, and a budget ends at most one request's tokens past its limit (as long
as answers stay within their reservation).

Concurrency leases expire after ``LEASE_SECONDS``, so a worker killed mid-answer
holds a slot for at most that long.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .. import jsonio
from ..errors import GatewayError
from .model import Policy

MINUTE = 60.0
LEASE_SECONDS = 3600.0
OUTPUT_ALLOWANCE = 4096  # tokens reserved for an answer that sets no max_output_tokens
CHARS_PER_TOKEN = 4
IN_FLIGHT_RETRY = 2      # s: Retry-After while a budget's rest is reserved by answers in flight
DAY = 86400.0
WEEK = 7 * DAY


def day_window(ts: float) -> tuple[str, float, float]:
    """The UTC day of *ts*: its bucket name, start and end."""
    start = ts - ts % DAY
    return "d:" + time.strftime("%Y-%m-%d", time.gmtime(start)), start, start + DAY


def week_window(ts: float) -> tuple[str, float, float]:
    """The ISO week of *ts* (Monday 00:00 UTC): its bucket name, start and end."""
    day = ts - ts % DAY
    start = day - time.gmtime(day).tm_wday * DAY
    return "w:" + time.strftime("%Y-%m-%d", time.gmtime(start)), start, start + WEEK


def estimate_tokens(body: dict) -> int:
    """What a request may cost before it is answered: its body's size in tokens
    (about 4 characters a token; the body's JSON overstates the prompt) plus its
    ``max_output_tokens``, or ``OUTPUT_ALLOWANCE`` when it sets none."""
    limit = body.get("max_output_tokens")
    out = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 \
        else OUTPUT_ALLOWANCE
    return len(jsonio.dumps(body)) // CHARS_PER_TOKEN + out


@dataclass(frozen=True)
class Budget:
    name: str        # tokens_per_day | tokens_per_week
    bucket: str      # d:2026-12-06 | w:2026-11-30
    limit: int
    resets_at: float


@dataclass(frozen=True)
class Plan:
    """What the counters must check and record for one request."""

    key_id: str
    lease_id: str
    now: float
    reserve: int
    rpm: int | None = None
    concurrency: int | None = None
    budgets: tuple[Budget, ...] = ()
    buckets: tuple[str, ...] = ()  # where the answer's tokens are charged

    @property
    def lease_until(self) -> float:
        return self.now + LEASE_SECONDS


def plan(policy: Policy, key_id: str, lease_id: str, now: float, estimate: int = 0) -> Plan:
    day, _, day_end = day_window(now)
    week, _, week_end = week_window(now)
    budgets = []
    if policy.tokens_per_day is not None:
        budgets.append(Budget("tokens_per_day", day, policy.tokens_per_day, day_end))
    if policy.tokens_per_week is not None:
        budgets.append(Budget("tokens_per_week", week, policy.tokens_per_week, week_end))
    return Plan(key_id, lease_id, now, estimate if budgets else 0,
                policy.requests_per_minute, policy.concurrency, tuple(budgets), (day, week))


@dataclass
class Seen:
    """What the counters held when a request was checked."""

    requests: int = 0               # requests in the last minute
    oldest: float | None = None     # the oldest of them
    in_flight: int = 0              # live leases
    reserved: int = 0               # tokens reserved by them
    charged: dict[str, int] = field(default_factory=dict)  # bucket -> tokens


def refused_by(p: Plan, seen: Seen) -> str | None:
    """The limit that refuses the request, or None: it may go.

    The Redis counters run the same rule in Lua (``redis_counters._ADMIT``); a
    test holds both to the same cases."""
    if p.rpm is not None and seen.requests >= p.rpm:
        return "requests_per_minute"
    if p.concurrency is not None and seen.in_flight >= p.concurrency:
        return "concurrency"
    for b in p.budgets:
        used = seen.charged.get(b.bucket, 0)
        if used >= b.limit or (seen.in_flight and used + seen.reserved + p.reserve > b.limit):
            return b.name
    return None


def refusal(p: Plan, limit: str, seen: Seen) -> GatewayError:
    """A 429 naming the limit and when it resets, with ``Retry-After``."""
    if limit == "requests_per_minute":
        reset = (seen.oldest if seen.oldest is not None else p.now) + MINUTE
        wait = _seconds(reset - p.now)
        message = (f"This key's limit of {p.rpm} requests per minute is reached; "
                   f"the next request is allowed in {wait} s.")
    elif limit == "concurrency":
        wait = 1
        message = (f"This key may have {p.concurrency} answers in flight at once and has "
                   f"{seen.in_flight}; retry when one ends.")
    else:
        b = next(b for b in p.budgets if b.name == limit)
        used = seen.charged.get(b.bucket, 0)
        per = "day" if limit == "tokens_per_day" else "week"
        if used >= b.limit:
            wait = _seconds(b.resets_at - p.now)
            message = (f"This key's budget of {b.limit} tokens per {per} is spent ({used} used); "
                       f"it resets at {_clock(b.resets_at)}.")
        else:
            wait = IN_FLIGHT_RETRY
            message = (f"The rest of this key's budget of {b.limit} tokens per {per} "
                       f"({b.limit - used} left) is reserved by {seen.in_flight} answer(s) in "
                       f"flight; retry when they end (it resets at {_clock(b.resets_at)}).")
    return GatewayError(429, message, code=f"key_{limit}_exceeded", type="rate_limit_error",
                        retry_after=wait)


def _seconds(delta: float) -> int:
    return max(1, int(-(-delta // 1)))


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def week_start(ts: float) -> float:
    return week_window(ts)[1]


def day_start(ts: float) -> float:
    return day_window(ts)[1]

