"""gateway.accounts.placement
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Quota-aware placement: which account a conversation goes to, and why
(docs/placement.md).

Pure: no web framework, no store. The pool hands in the accounts, their
stored quota windows (the ``x-codex-*`` headers and the usage endpoint) and
the time; out comes the order to try them in, each with a reason.

How it stays sticky without a table. A conversation's account is the top of a
weighted rendezvous (:mod:`.ranking`) of its continuity key over the accounts
*below the high-water mark*, each weighted by ``--weight`` × its headroom
factor. Every worker and instance reads the same stored windows, so each
computes the same account. Weighted rendezvous moves a key only when a weight
changes, and then only away from an account whose weight fell (or onto one
whose weight rose); the headroom factor moves in steps of
``placement.step_percent`` points, and a step (or the mark) is left only
``placement.hysteresis_percent`` points past its edge, so small quota changes
and noise between the headers and the usage endpoint move nobody.

Headroom is what is left of the fuller window, per share of that window still
to run before its reset (what is left then is renewed: an account that resets
soon may spend faster), at most twice a fresh window; unknown quota counts as
the median of the known accounts' (a fresh window when none is known).

How a conversation moves once. An account whose used share of either window
reaches the mark leaves the rendezvous: each of its conversations lands on its
next account (the top of the rest), which is where every later turn goes too,
until the account's window resets. The mark sits below 100 %, so the move is a
cache miss on a healthy account instead of a 429. An account at 100 % with a
known reset is not tried at all until then (:attr:`Choice.until`).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import ranking

WINDOWS = ("primary", "secondary")
NEUTRAL_FACTOR = 1.0   # unknown quota, when no account's is known: a fresh window
MIN_FACTOR = 0.05      # an account below the mark always keeps a little share
MAX_HEADROOM = 200.0   # an account about to reset counts at most twice a fresh one

# Why an account was chosen (the request record's ``placement``).
STICKY = "sticky"          # a conversation's later turn, on its account
HEADROOM = "headroom"      # a new conversation, placed by headroom
HIGH_WATER = "high_water"  # its account is above the mark: this is its next account
FAILOVER = "failover"      # the accounts before it could not serve (cooling, failed)

OPEN, DRAINING, EXHAUSTED = "open", "draining", "exhausted"


@dataclass(frozen=True)
class Knobs:
    """The ``[placement]`` settings this module needs (config.PlacementConfig)."""

    high_water_percent: float = 90.0
    step_percent: float = 20.0
    hysteresis_percent: float = 2.0
    unknown_after_seconds: float = 3600.0
    quota_aware: bool = True

    @classmethod
    def of(cls, pcfg) -> "Knobs":
        """From ``config.placement``."""
        return cls(pcfg.high_water_percent, pcfg.step_percent, pcfg.hysteresis_percent,
                   pcfg.unknown_after_seconds, pcfg.strategy.lower() == "quota")


@dataclass(frozen=True)
class Standing:
    """One account's quota as placement sees it."""

    state: str = OPEN             # open | draining (above the mark) | exhausted (100 %)
    used: float | None = None     # the fuller window's used percent; None: unknown
    level: int | None = None      # headroom step (higher: more headroom); None: unknown
    until: float | None = None    # exhausted: when the window resets

    def factor(self, knobs: Knobs) -> float:
        """The headroom factor the account's ``--weight`` is multiplied by."""
        if self.level is None:
            return NEUTRAL_FACTOR
        return max((self.level + 0.5) * knobs.step_percent / 100.0, MIN_FACTOR)

    def memo(self) -> dict:
        """What is stored with the windows, so the next reading keeps the hysteresis."""
        return {"level": self.level, "draining": self.state != OPEN}


_UNKNOWN = Standing()  # an account with no stored windows


@dataclass(frozen=True)
class Choice:
    account: object
    reason: str
    until: float | None = None    # set: skip without a request until then (100 %)


# -- one account's standing (pure) --------------------------------------------------

def assess(limits: Mapping | None, now: float, knobs: Knobs) -> Standing:
    """The standing of an account from its stored windows (and the memo stored
    with them by the previous reading, for hysteresis). A window whose reset
    time has passed counts as empty; windows older than
    ``unknown_after_seconds`` are unknown."""
    if not isinstance(limits, Mapping):
        return Standing()
    observed = limits.get("observed_at")
    if not _num(observed):
        return Standing()
    stale = now - observed > knobs.unknown_after_seconds
    used = headroom = None
    until = None
    for name in WINDOWS:
        window = limits.get(name)
        if not isinstance(window, Mapping) or not _num(window.get("used_percent")):
            continue
        pct = float(window["used_percent"])
        reset = window.get("reset_at") if _num(window.get("reset_at")) else None
        if reset is not None and reset <= now:
            pct = 0.0  # the window has reset since
        used = pct if used is None else max(used, pct)
        room = _pace(100.0 - pct, window, reset, observed)
        headroom = room if headroom is None else min(headroom, room)
        if pct >= 100.0 and reset is not None:
            until = reset if until is None else max(until, reset)
    if until is not None:  # a limit met stays met until its reset, however old the news
        return Standing(EXHAUSTED, used, 0, until)
    if used is None or stale:
        return Standing()
    memo = limits.get("placement") if isinstance(limits.get("placement"), Mapping) else {}
    level = quantise(headroom, memo.get("level"), knobs)
    was_draining = bool(memo.get("draining")) and used > 0
    mark = knobs.high_water_percent - (knobs.hysteresis_percent if was_draining else 0.0)
    return Standing(DRAINING if used >= mark else OPEN, used, level)


def quantise(value: float, previous: int | None, knobs: Knobs) -> int:
    """The step of *value* (headroom points). The previous step is kept while the
    value is within ``hysteresis_percent`` of its edges."""
    step = max(knobs.step_percent, 1e-9)
    level = int(max(value, 0.0) // step)
    if isinstance(previous, int) and not isinstance(previous, bool) and level != previous:
        low = previous * step - knobs.hysteresis_percent
        high = (previous + 1) * step + knobs.hysteresis_percent
        if low <= value < high:
            return previous
    return level


def _pace(left: float, window: Mapping, reset: float | None, observed: float) -> float:
    """Headroom points of one window: what is left of it, per share of the window
    still to run before it resets (what is left is renewed then, so an account
    that resets soon can spend faster). A fresh window is its percent left; at
    most ``MAX_HEADROOM``. Measured at the observation, not now, so a standing
    only changes with a new reading."""
    minutes = window.get("window_minutes")
    if reset is None or not _num(minutes) or minutes <= 0:
        return min(left, MAX_HEADROOM)
    share = min(max((reset - observed) / (minutes * 60.0), 0.0), 1.0)
    return min(left / max(share, 1e-6), MAX_HEADROOM)


def _num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- the order for one conversation (pure) ------------------------------------------

def place(key: str, accounts: Iterable, standings: Mapping[str, Standing], knobs: Knobs,
          *, new: bool) -> list[Choice]:
    """The accounts to try for continuity key *key*, best first, each with the
    reason it would be chosen: the accounts below the mark by weighted
    rendezvous, then those above it, then those at 100 % (with ``until``).
    *new*: the request opens a conversation (no earlier turn in it)."""
    accounts = list(accounts)
    if not knobs.quota_aware:
        ranked = ranking.rank(key, accounts)
        return [Choice(a, (HEADROOM if new else STICKY) if i == 0 else FAILOVER)
                for i, a in enumerate(ranked)]
    of = {a.id: standings.get(a.id) or _UNKNOWN for a in accounts}
    factor = _factors(accounts, of, knobs)
    score = {}
    by_state: dict[str, list] = {OPEN: [], DRAINING: [], EXHAUSTED: []}
    for a in accounts:  # one pass: every request places its conversation
        score[a.id] = ranking.score(key, a.id, (getattr(a, "weight", 1.0) or 1.0) * factor[a.id])
        group = by_state.get(of[a.id].state)
        if group is not None:
            group.append(a)

    def ranked(state: str) -> list:
        group = by_state[state]
        return sorted(group, key=lambda a: (-score[a.id], a.id)) if len(group) > 1 else group

    first, draining, exhausted = ranked(OPEN), ranked(DRAINING), ranked(EXHAUSTED)
    if not first:  # nothing below the mark: the mark cannot be honoured
        first, draining = draining, []
    out: list[Choice] = []
    if first:
        moved_off = bool(draining) and score[draining[0].id] > score[first[0].id]
        reason = HEADROOM if new else (HIGH_WATER if moved_off else STICKY)
        out.append(Choice(first[0], reason))
    out += [Choice(a, FAILOVER) for a in first[1:] + draining]
    out += [Choice(a, FAILOVER, of[a.id].until) for a in exhausted]
    return out


def shares(accounts: Iterable, standings: Mapping[str, Standing], knobs: Knobs) -> dict:
    """``{account id: share of new conversations}`` (weighted rendezvous gives
    each account its weight's share of the keys)."""
    accounts = list(accounts)
    of = {a.id: standings.get(a.id) or Standing() for a in accounts}
    if knobs.quota_aware:
        factor = _factors(accounts, of, knobs)
        taking = [a for a in accounts if of[a.id].state == OPEN] or \
            [a for a in accounts if of[a.id].state == DRAINING]
        weights = {a.id: (a.weight or 1.0) * factor[a.id] for a in taking}
    else:
        weights = {a.id: a.weight or 1.0 for a in accounts}
    total = sum(weights.values())
    return {a.id: (weights.get(a.id, 0.0) / total if total else 0.0) for a in accounts}


def _factors(accounts: list, of: Mapping[str, Standing], knobs: Knobs) -> dict[str, float]:
    """Each account's headroom factor; an unknown one counts as neutral: the median
    of the known open accounts' (so learning the first account's windows moves
    nobody when the others turn out alike), ``NEUTRAL_FACTOR`` when none is known."""
    own = {a.id: of[a.id].factor(knobs) for a in accounts if of[a.id].level is not None}
    known = sorted(own[a.id] for a in accounts if a.id in own and of[a.id].state == OPEN)
    neutral = known[len(known) // 2] if known else NEUTRAL_FACTOR
    return {a.id: own.get(a.id, neutral) for a in accounts}


# -- what a moved conversation must leave out (pure) --------------------------------

_EARLIER_TURN_TYPES = frozenset({"reasoning", "function_call", "function_call_output",
                                 "custom_tool_call", "custom_tool_call_output", "compaction",
                                 "local_shell_call", "web_search_call", "image_generation_call"})


def is_new_conversation(body: Mapping) -> bool:
    """True when a Responses body carries no earlier turn (no assistant message,
    no reasoning, no tool call or result, no previous_response_id)."""
    if body.get("previous_response_id"):
        return False
    items = body.get("input")
    if not isinstance(items, list):
        return True
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("role") == "assistant" or item.get("type") in _EARLIER_TURN_TYPES:
            return False
    return True


def moved(reason: str | None) -> bool:
    """The conversation is not on the account its earlier turns were (probably)
    served by: reasoning encrypted there cannot be read here."""
    return reason in (HIGH_WATER, FAILOVER)


def without_foreign_reasoning(body: dict) -> dict | None:
    """*body* without its encrypted reasoning items (an account can only read
    the reasoning it encrypted itself); None when there were none. Compaction
    items stay: they are the conversation's only copy of what they summarise."""
    items = body.get("input")
    if not isinstance(items, list):
        return None
    kept = [i for i in items if not (isinstance(i, Mapping) and i.get("type") == "reasoning"
                                     and i.get("encrypted_content"))]
    if len(kept) == len(items):
        return None
    return dict(body, input=kept)


class Unreadable:
    """Conversations an account refused reasoning for (``invalid_encrypted_content``):
    ``(continuity key, account id)``, the most recent *size* kept per process. A
    conversation moved by a headroom step is placed as ``sticky`` (nothing says it
    moved); its first refusal is retried without the reasoning, and from then on
    this process leaves it out at once instead of being refused on every turn.
    Every such request leaves all encrypted reasoning out, so the prefix the
    upstream caches is the same whichever worker sends it."""

    def __init__(self, size: int = 10000):
        self.size = size
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, account_id: str) -> None:
        with self._lock:
            self._seen[(key, account_id)] = None
            self._seen.move_to_end((key, account_id))
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)

    def __contains__(self, item: tuple[str, str]) -> bool:
        with self._lock:
            return item in self._seen
