"""bench.placement
~~~~~~~~~~~~~~~~~~
``python -m bench.placement``: rendezvous-only against quota-aware placement
(``gateway.accounts.placement``, docs/placement.md), simulated on a clock.

Accounts with token quotas that fill as they serve (a 5-hour window each,
starting at different fill levels and resetting at different times);
conversations arriving at random with a realistic mix of lengths (most short,
some long), each turn resending the whole history. The upstream is modelled
as the fake backend models it: a turn meets the prompt cache when its previous
turn was served by the same account a little earlier; an account at its quota
answers 429 (the gateway cools it until the reset and fails over).

Reported for each strategy, over the same arrivals: requests served before the
first 429 reaches a client (no account could serve), the 429s met upstream (each
a delayed turn and a conversation moved cold), conversations moved, and the share
of input tokens that were cached. The quota cost of a turn is its uncached input,
a tenth of its cached input and four times its output (the subscription's
weighting is not published; cheaper cached input is what matters here).
"""
from __future__ import annotations

import heapq
import random
import sys
from dataclasses import dataclass, field

from gateway.accounts import placement

WINDOW = 5 * 3600.0
CACHE_TTL = 600.0           # a prompt stays cached this long after its turn
SYSTEM_TOKENS = 4000        # instructions and tools
TURN_TOKENS = (300, 3000)   # a user message plus tool output, per turn (uniform)
OUTPUT_TOKENS = (100, 800)
GAP = 45.0                  # mean seconds between a conversation's turns
HORIZON = 10 * 3600.0
POLL = 300.0                # the quota poller reads an idle account's windows this often


@dataclass(frozen=True)
class Acct:
    id: str
    weight: float = 1.0


@dataclass
class Quota:
    capacity: float
    used: float
    reset_at: float
    limits: dict = field(default_factory=dict)  # what the gateway stored (with its memo)

    def percent(self) -> float:
        return min(100.0 * self.used / self.capacity, 100.0)

    def roll(self, now: float) -> None:
        while now >= self.reset_at:
            self.used, self.reset_at = 0.0, self.reset_at + WINDOW


def record(q: Quota, now: float, knobs: placement.Knobs) -> None:
    """A reading of the account's window (headers, or the usage poll), stored as
    the pool stores it: with the placement memo, read against the previous one."""
    reading = {"primary": {"used_percent": q.percent(), "window_minutes": WINDOW / 60,
                           "reset_at": q.reset_at}, "observed_at": now}
    memo = q.limits.get("placement")
    q.limits = dict(reading, placement=placement.assess(
        dict(reading, placement=memo) if memo else reading, now, knobs).memo())


def turns(rng: random.Random) -> int:
    """Most conversations are short, a few are long."""
    r = rng.random()
    if r < 0.6:
        return rng.randint(1, 5)
    if r < 0.9:
        return rng.randint(6, 30)
    return rng.randint(31, 120)


def simulate(strategy: str, seed: int = 7, accounts: int = 4, rate: float = 1 / 75.0,
             capacity: float = 6.0e6) -> dict:
    rng = random.Random(seed)
    knobs = placement.Knobs(quota_aware=strategy == "quota")
    accts = [Acct(f"acct-{i}") for i in range(accounts)]
    # Staggered fill and resets: the account that resets soonest is also the fullest.
    quotas = {a.id: Quota(capacity, capacity * f, reset, {})
              for a, f, reset in zip(accts, (0.70, 0.45, 0.25, 0.10),
                                     (1.0 * 3600, 2.5 * 3600, 3.5 * 3600, 4.5 * 3600))}
    cooling: dict[str, float] = {}
    events: list = []
    t, n = 0.0, 0
    while t < HORIZON:  # arrivals of new conversations
        t += rng.expovariate(rate)
        heapq.heappush(events, (t, n, {"key": f"conv-{seed}-{n}", "left": turns(rng),
                                       "history": SYSTEM_TOKENS, "on": None, "at": -1e9,
                                       "turn": 0}))
        n += 1
    out = {"served": 0, "served_before_client_429": None, "upstream_429": 0, "moved": 0,
           "input": 0, "cached": 0, "client_429": 0}
    while events:
        now, n, conv = heapq.heappop(events)
        if now > HORIZON:
            break
        for q in quotas.values():
            q.roll(now)
            if now - q.limits.get("observed_at", -1e9) >= POLL:  # the quota poller
                record(q, now, knobs)
        prompt = conv["history"] + rng.randint(*TURN_TOKENS)
        standings = {aid: placement.assess(q.limits, now, knobs) for aid, q in quotas.items()}
        order = placement.place(conv["key"], accts, standings, knobs, new=conv["turn"] == 0)
        served_by = None
        for choice in order:
            aid = choice.account.id
            if (choice.until and choice.until > now) or cooling.get(aid, 0) > now:
                continue
            q = quotas[aid]
            if q.used >= q.capacity:  # the upstream's 429: cooled until its reset
                out["upstream_429"] += 1
                cooling[aid] = q.reset_at
                continue
            served_by = aid
            break
        if served_by is None:
            out["client_429"] += 1
            if out["served_before_client_429"] is None:
                out["served_before_client_429"] = out["served"]
            continue  # the client gives up on this conversation
        q = quotas[served_by]
        cached = conv["history"] if (conv["on"] == served_by
                                     and now - conv["at"] < CACHE_TTL) else 0
        output = rng.randint(*OUTPUT_TOKENS)
        q.used += (prompt - cached) + 0.1 * cached + 4 * output
        if conv["on"] is not None and conv["on"] != served_by:
            out["moved"] += 1
        out["served"] += 1
        out["input"] += prompt
        out["cached"] += cached
        record(q, now, knobs)  # the answer's headers
        conv.update(history=prompt + output, on=served_by, at=now, turn=conv["turn"] + 1)
        conv["left"] -= 1
        if conv["left"] > 0:
            heapq.heappush(events, (now + rng.expovariate(1 / GAP), n, conv))
    out["cached_share"] = out["cached"] / out["input"] if out["input"] else 0.0
    return out


def main() -> int:
    print("placement simulation: 4 accounts (70/45/25/10 % used, resetting in 1/2.5/3.5/4.5 h),"
          f" {HORIZON / 3600:.0f} h of arrivals, 3 seeds")
    head = ("strategy", "served before a client 429", "upstream 429s", "moved",
            "cached share", "served")
    print("  ".join(f"{h:>26}" if i else f"{h:<11}" for i, h in enumerate(head)))
    for strategy in ("rendezvous", "quota"):
        runs = [simulate(strategy, seed) for seed in (7, 8, 9)]
        first = [r["served_before_client_429"] for r in runs]
        row = (strategy,
               "/".join("never" if f is None else str(f) for f in first),
               "/".join(str(r["upstream_429"]) for r in runs),
               "/".join(str(r["moved"]) for r in runs),
               "/".join(f"{r['cached_share']:.1%}" for r in runs),
               "/".join(str(r["served"]) for r in runs))
        print("  ".join(f"{c:>26}" if i else f"{c:<11}" for i, c in enumerate(row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
