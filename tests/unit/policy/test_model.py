"""Per-key policy data: round trips, expiry and limit flags."""
from __future__ import annotations

import calendar

import pytest

from gateway.policy.model import Policy, parse_expires, parse_limit

T0 = calendar.timegm((2026, 12, 9, 10, 0, 0))  # a Wednesday


def test_policy_round_trips_and_ignores_what_it_does_not_know():
    p = Policy(models=("gpt-5.4",), tokens_per_day=20000, concurrency=2, show_quota=True)
    assert Policy.from_dict(p.to_dict()) == p
    assert p.to_dict() == {"models": ["gpt-5.4"], "tokens_per_day": 20000, "concurrency": 2,
                           "show_quota": True}
    assert Policy.from_dict({"tokens_per_day": "lots", "future_field": 1, "revoked": 1}) == Policy()
    assert Policy().empty and not Policy().counted and Policy(requests_per_minute=3).counted


def test_expiry_and_limit_flags():
    assert parse_expires("30d", now=T0) == T0 + 30 * 86400
    assert parse_expires("12h", now=T0) == T0 + 12 * 3600
    assert parse_expires("2027-01-31") == calendar.timegm((2027, 2, 1, 0, 0, 0))  # through that day
    assert parse_expires("never") is None
    with pytest.raises(ValueError):
        parse_expires("soon")
    assert parse_limit("20k", "tokens_per_day") == 20000
    assert parse_limit("20,000", "tokens_per_day") == 20000
    assert parse_limit("none", "concurrency") is None
    for bad in ("0", "-3", "many"):
        with pytest.raises(ValueError):
            parse_limit(bad, "concurrency")
