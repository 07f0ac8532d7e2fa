"""The two counter stores (SQLite, and a real redis-server) held to the same cases."""
from __future__ import annotations

import calendar

import pytest

from gateway.policy import admission
from gateway.policy.counters import SQLiteCounters
from gateway.policy.admission import plan
from gateway.policy.model import Policy
from gateway.policy.redis_counters import RedisCounters
from gateway.state.link import Link

T0 = calendar.timegm((2026, 12, 9, 10, 0, 0))  # a Wednesday


@pytest.fixture(params=["sqlite", "redis"])
def counters(request, tmp_path):
    if request.param == "sqlite":
        return SQLiteCounters(tmp_path / "policy.sqlite")
    srv = request.getfixturevalue("redis_srv")
    srv.client().flushdb()
    return RedisCounters(Link(srv.url, 2.0), "t:")


def test_both_stores_count_requests_in_a_sliding_minute(counters):
    policy = Policy(requests_per_minute=3)
    admitted = [counters.admit(plan(policy, "k", f"l{i}", T0 + i))[0] for i in range(5)]
    assert admitted == [None, None, None, "requests_per_minute", "requests_per_minute"]
    _, seen = counters.admit(plan(policy, "k", "x", T0 + 59.5))
    assert seen.requests == 3 and seen.oldest == T0
    assert counters.admit(plan(policy, "k", "y", T0 + 60.0))[0] is None  # the first has left
    assert counters.admit(plan(policy, "other", "z", T0 + 1))[0] is None  # keys are apart


def test_both_stores_hold_leases_reserve_and_charge(counters):
    policy = Policy(concurrency=2, tokens_per_day=10000)
    a = plan(policy, "k", "a", T0, estimate=4000)
    b = plan(policy, "k", "b", T0 + 1, estimate=4000)
    assert counters.admit(a)[0] is None
    refused, seen = counters.admit(b)
    assert refused is None and (seen.in_flight, seen.reserved) == (1, 4000)
    refused, seen = counters.admit(plan(policy, "k", "c", T0 + 2, estimate=10))
    assert refused == "concurrency" and (seen.in_flight, seen.reserved) == (2, 8000)
    counters.settle("k", "a", 6000, a.buckets, T0 + 3)
    # charged 6000 + reserved 4000 (b) + 10 > 10000: refused while b is in flight
    refused, seen = counters.admit(plan(policy, "k", "d", T0 + 4, estimate=10))
    assert refused == "tokens_per_day" and seen.charged == {"d:2026-12-09": 6000}
    counters.settle("k", "b", 5000, b.buckets, T0 + 5)
    refused, seen = counters.admit(plan(policy, "k", "e", T0 + 6, estimate=10))
    assert refused == "tokens_per_day" and seen.charged["d:2026-12-09"] == 11000
    assert counters.seen("k", a.buckets, T0 + 6).charged == {"d:2026-12-09": 11000,
                                                             "w:2026-12-07": 11000}


def test_both_stores_let_a_dead_workers_lease_expire(counters):
    policy = Policy(concurrency=1)
    assert counters.admit(plan(policy, "k", "a", T0))[0] is None
    assert counters.admit(plan(policy, "k", "b", T0 + 10))[0] == "concurrency"
    assert counters.admit(plan(policy, "k", "c", T0 + admission.LEASE_SECONDS))[0] is None
