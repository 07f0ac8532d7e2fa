"""Quota-aware placement (gateway.accounts.placement): standings from the stored
windows, the order for one conversation, and the properties stickiness rests on."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.accounts import placement as pl
from gateway.accounts.placement import Knobs, Standing

NOW = 1_800_000_000.0
KNOBS = Knobs()


@dataclass(frozen=True)
class Acct:
    id: str
    weight: float = 1.0


def limits(primary, secondary=None, *, observed=NOW, reset_in=4 * 3600, memo=None):
    out = {"observed_at": observed,
           "primary": {"used_percent": primary, "window_minutes": 300,
                       "reset_at": observed + reset_in}}
    if secondary is not None:
        out["secondary"] = {"used_percent": secondary, "window_minutes": 10080,
                            "reset_at": observed + 6 * 86400}
    if memo is not None:
        out["placement"] = memo
    return out


def standings(used: dict) -> dict:
    return {aid: pl.assess(limits(u), NOW, KNOBS) for aid, u in used.items()}


def first(key, accounts, stand, new=False):
    return pl.place(key, accounts, stand, KNOBS, new=new)[0]


THREE = [Acct("a10"), Acct("b60"), Acct("c92")]


# -- standings ----------------------------------------------------------------------

def test_unknown_and_stale_quota_are_neutral():
    assert pl.assess(None, NOW, KNOBS) == Standing()
    assert pl.assess({"observed_at": NOW}, NOW, KNOBS) == Standing()
    old = limits(95, observed=NOW - KNOBS.unknown_after_seconds - 1)
    assert pl.assess(old, NOW, KNOBS) == Standing()
    assert Standing().factor(KNOBS) == pl.NEUTRAL_FACTOR
    # but a limit met stays met until its reset, however old the reading
    full = limits(100, observed=NOW - 2 * KNOBS.unknown_after_seconds, reset_in=3 * 3600)
    assert pl.assess(full, NOW, KNOBS).state == pl.EXHAUSTED


def test_the_fuller_window_decides():
    st_ = pl.assess(limits(10, 93), NOW, KNOBS)
    assert st_.state == pl.DRAINING and st_.used == 93


def test_mark_and_exhaustion():
    assert pl.assess(limits(89.9), NOW, KNOBS).state == pl.OPEN
    assert pl.assess(limits(90), NOW, KNOBS).state == pl.DRAINING
    full = pl.assess(limits(100, reset_in=600), NOW, KNOBS)
    assert full.state == pl.EXHAUSTED and full.until == NOW + 600
    # a configurable mark
    assert pl.assess(limits(85), NOW, Knobs(high_water_percent=80)).state == pl.DRAINING


def test_a_window_that_has_reset_counts_as_empty():
    reset = limits(100, observed=NOW - 1000, reset_in=500)  # reset 500 s ago
    st_ = pl.assess(reset, NOW, KNOBS)
    assert st_.state == pl.OPEN and st_.used == 0 and st_.level == 10  # all of it, soon renewed


def test_headroom_counts_more_the_sooner_it_resets():
    soon = pl.assess(limits(60, reset_in=3600), NOW, KNOBS)   # 40 % left for 1/5 of the window
    late = pl.assess(limits(60, reset_in=5 * 3600), NOW, KNOBS)
    assert soon.level > late.level == 2
    assert soon.factor(KNOBS) > late.factor(KNOBS)
    fresh = pl.assess(limits(0, reset_in=5 * 3600), NOW, KNOBS)
    assert fresh.factor(KNOBS) == pl.NEUTRAL_FACTOR + 0.1  # a fresh window ~ unknown


def test_hysteresis_keeps_the_step_near_its_edges():
    knobs = Knobs(step_percent=20, hysteresis_percent=2)
    assert pl.quantise(39.0, None, knobs) == 1
    assert pl.quantise(41.0, 1, knobs) == 1      # just past the edge: kept
    assert pl.quantise(42.5, 1, knobs) == 2      # past edge + margin: moves
    assert pl.quantise(38.5, 2, knobs) == 2      # back below by less than the margin
    assert pl.quantise(37.5, 2, knobs) == 1
    # the mark too: an account that was draining stays so within the margin
    back = limits(89, reset_in=5 * 3600, memo={"level": 0, "draining": True})
    assert pl.assess(back, NOW, KNOBS).state == pl.DRAINING
    assert pl.assess(dict(back, placement={"level": 0}), NOW, KNOBS).state == pl.OPEN


# -- the order ------------------------------------------------------------------------

def test_three_accounts_at_10_60_92_percent():
    stand = standings({"a10": 10, "b60": 60, "c92": 92})
    counts = Counter(first(f"conv-{i}", THREE, stand, new=True).account.id for i in range(60))
    assert counts["c92"] == 0
    assert counts["a10"] > counts["b60"] > 0
    shares = pl.shares(THREE, stand, KNOBS)
    assert shares["c92"] == 0 and shares["a10"] > shares["b60"]
    assert abs(sum(shares.values()) - 1) < 1e-9


def test_reasons():
    stand = standings({"a10": 10, "b60": 60, "c92": 92})
    order = pl.place("k", THREE, stand, KNOBS, new=True)
    assert order[0].reason == pl.HEADROOM
    assert [c.reason for c in order[1:]] == [pl.FAILOVER, pl.FAILOVER]
    assert order[-1].account.id == "c92"  # above the mark: only after the others
    # a later turn of a conversation whose account is above the mark
    moved = [k for k in (f"conv-{i}" for i in range(200))
             if pl.place(k, THREE, standings({"a10": 10, "b60": 60, "c92": 85}), KNOBS,
                         new=False)[0].account.id == "c92"]
    assert moved
    for key in moved:
        choice = first(key, THREE, stand)
        assert choice.reason == pl.HIGH_WATER and choice.account.id != "c92"
    stays = next(k for k in (f"conv-{i}" for i in range(200)) if k not in moved)
    assert first(stays, THREE, stand).reason == pl.STICKY


def test_an_exhausted_account_comes_last_with_its_reset():
    stand = {"a": pl.assess(limits(100, reset_in=900), NOW, KNOBS),
             "b": pl.assess(limits(95), NOW, KNOBS)}
    order = pl.place("k", [Acct("a"), Acct("b")], stand, KNOBS, new=False)
    assert [c.account.id for c in order] == ["b", "a"]
    assert order[0].until is None and order[1].until == NOW + 900


def test_rendezvous_only_ignores_quota():
    knobs = Knobs(quota_aware=False)
    stand = standings({"a10": 10, "b60": 60, "c92": 92})
    counts = Counter(pl.place(f"c{i}", THREE, stand, knobs, new=True)[0].account.id
                     for i in range(300))
    assert counts["c92"] > 50
    assert pl.shares(THREE, stand, knobs)["c92"] == 1 / 3


# -- properties -----------------------------------------------------------------------

USED = st.floats(min_value=0, max_value=99.9, allow_nan=False)
KEYS = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True)


@settings(max_examples=60, deadline=None)
@given(used=st.lists(USED, min_size=2, max_size=5), keys=KEYS, data=st.data())
def test_deterministic_whatever_the_order_of_the_accounts(used, keys, data):
    accounts = [Acct(f"acct-{i}", weight=1 + i % 2) for i in range(len(used))]
    stand = standings({a.id: u for a, u in zip(accounts, used)})
    shuffled = data.draw(st.permutations(accounts))
    for key in keys:
        one = [(c.account.id, c.reason) for c in pl.place(key, accounts, stand, KNOBS, new=False)]
        two = [(c.account.id, c.reason) for c in pl.place(key, shuffled, stand, KNOBS, new=False)]
        assert one == two


BELOW_MARK = st.lists(st.floats(min_value=0, max_value=89.9), min_size=2, max_size=5)


def accounts_at(used: list) -> tuple[list, dict]:
    accounts = [Acct(f"acct-{i}") for i in range(len(used))]
    return accounts, standings({a.id: u for a, u in zip(accounts, used)})


@settings(max_examples=60, deadline=None)
@given(used=BELOW_MARK, crossing=st.integers(min_value=0, max_value=4),
       above=st.floats(90, 99.9), keys=KEYS)
def test_only_an_account_crossing_the_mark_moves_conversations(used, crossing, above, keys):
    accounts, before = accounts_at(used)
    crossing %= len(used)
    after = dict(before)
    after[accounts[crossing].id] = pl.assess(limits(above), NOW, KNOBS)
    for key in keys:
        was = first(key, accounts, before)
        now = first(key, accounts, after)
        if was.account.id != accounts[crossing].id:
            assert now.account == was.account  # nobody else's conversation moves
        else:  # each of its conversations moves to its next account
            assert now.account == pl.place(key, accounts, before, KNOBS, new=False)[1].account
            if before[accounts[crossing].id].level == after[accounts[crossing].id].level:
                assert now.reason == pl.HIGH_WATER  # said when its weight did not step too


@settings(max_examples=60, deadline=None)
@given(used=BELOW_MARK, which=st.integers(min_value=0, max_value=4), drop=st.floats(0, 89.9),
       keys=KEYS)
def test_more_headroom_never_loses_a_conversation(used, which, drop, keys):
    which %= len(used)
    accounts, before = accounts_at(used)
    freer = list(used)
    freer[which] = min(drop, used[which])
    after = accounts_at(freer)[1]
    share_before = pl.shares(accounts, before, KNOBS)[accounts[which].id]
    assert pl.shares(accounts, after, KNOBS)[accounts[which].id] >= share_before
    for key in keys:
        if first(key, accounts, before).account == accounts[which]:
            assert first(key, accounts, after).account == accounts[which]


@settings(max_examples=60, deadline=None)
@given(used=st.floats(0, 87), delta=st.floats(-1.5, 1.5), keys=KEYS)
def test_a_small_quota_change_moves_nobody(used, delta, keys):
    """Re-read with the memo stored by the previous reading: a change within the
    hysteresis margin keeps every step, so every conversation stays."""
    accounts = [Acct("x"), Acct("y"), Acct("z")]
    first_reading = {a.id: pl.assess(limits(used + 5 * i), NOW, KNOBS)
                     for i, a in enumerate(accounts)}
    second = {a.id: pl.assess(limits(max(used + 5 * i + delta, 0),
                                     memo=first_reading[a.id].memo()), NOW, KNOBS)
              for i, a in enumerate(accounts)}
    for key in keys:
        assert first(key, accounts, first_reading).account == first(key, accounts,
                                                                       second).account


# -- a moved conversation -------------------------------------------------------------

def test_new_conversation_and_foreign_reasoning():
    user = {"type": "message", "role": "user", "content": "hi"}
    assert pl.is_new_conversation({"input": [user]})
    assert pl.is_new_conversation({"input": "hi"})
    assert not pl.is_new_conversation({"input": [user], "previous_response_id": "resp_1"})
    rs = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-x"}
    body = {"model": "m", "input": [user, rs, {"type": "message", "role": "assistant",
                                               "content": "ok"}, user]}
    assert not pl.is_new_conversation(body)
    stripped = pl.without_foreign_reasoning(body)
    assert rs not in stripped["input"] and len(stripped["input"]) == 3
    assert body["input"][1] is rs  # the caller's body is not changed
    assert pl.without_foreign_reasoning({"input": [user]}) is None
    assert pl.moved(pl.HIGH_WATER) and pl.moved(pl.FAILOVER)
    assert not pl.moved(pl.STICKY) and not pl.moved(pl.HEADROOM)


def test_an_unknown_account_counts_as_the_median_of_the_known_ones():
    accounts = [Acct("known-1"), Acct("known-2"), Acct("fresh")]
    keys = [f"k{i}" for i in range(200)]
    alike = standings({"known-1": 30})
    before = [first(k, accounts, alike).account.id for k in keys]
    # the second account's windows arrive and are like the first's: nobody moves
    after = [first(k, accounts, standings({"known-1": 30, "known-2": 30})).account.id
             for k in keys]
    assert before == after
    none_known = pl.shares(accounts, {}, KNOBS)
    assert all(abs(v - 1 / 3) < 1e-9 for v in none_known.values())
