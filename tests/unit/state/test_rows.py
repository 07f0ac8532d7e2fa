"""gateway.state.rows: every health change as a pure function (what the Redis
store runs in its transaction and on its snapshot during an outage)."""
from __future__ import annotations

import pytest

from gateway.state import rows

NOW = 1_000_000.0


def row(**kw) -> dict:
    out = rows.empty()
    out.update(kw)
    return out


COOLING = row(cooldown_until=NOW + 600, reason="usage_limit_reached", failures=2,
              probe_at=NOW - 100)

CASES = [
    # (name, row before, op, args, row after, result)
    ("cooldown on nothing", None, "set_cooldown", {"until": NOW + 5, "reason": "http_500"},
     row(cooldown_until=NOW + 5, reason="http_500", failures=1, probe_at=NOW), True),
    ("cooldown counts failures", COOLING, "set_cooldown", {"until": NOW + 9, "reason": "x"},
     row(cooldown_until=NOW + 9, reason="x", failures=3, probe_at=NOW), True),
    ("clear", COOLING, "clear", {}, row(probe_at=NOW - 100), True),
    ("clear before a later cooldown keeps it", COOLING, "clear", {"before": NOW - 200},
     COOLING, False),
    ("clear before an earlier cooldown ends it", COOLING, "clear", {"before": NOW},
     row(probe_at=NOW - 100), True),
    ("clear before on nothing", None, "clear", {"before": NOW}, None, False),
    ("login clear lifts needs_login",
     row(needs_login=True, login_reason="refresh_token_reused", login_credential="ab"),
     "clear", {"login": True}, row(), True),
    ("plain clear keeps needs_login", row(needs_login=True, login_reason="r"), "clear", {},
     row(needs_login=True, login_reason="r"), True),
    ("probe claimed", COOLING, "claim_probe", {"older_than": NOW - 50},
     dict(COOLING, probe_at=NOW), True),
    ("probe too recent", COOLING, "claim_probe", {"older_than": NOW - 200}, COOLING, False),
    ("probe without cooldown", row(), "claim_probe", {"older_than": NOW}, row(), False),
    ("probe on nothing", None, "claim_probe", {"older_than": NOW}, None, False),
    ("needs login", None, "mark_needs_login", {"reason": "r", "credential": "fp"},
     row(needs_login=True, login_reason="r", login_credential="fp"), True),
    ("rate limits stamp last_used", None, "record_rate_limits",
     {"limits": {"primary": {"used_percent": 5}}},
     row(rate_limits={"primary": {"used_percent": 5}}, last_used=NOW), True),
    ("used", None, "record_used", {}, row(last_used=NOW), True),
    ("refresh", None, "record_refresh", {}, row(last_refresh=NOW), True),
    ("forget", COOLING, "forget", {}, None, True),
    ("forget nothing", None, "forget", {}, None, False),
]


@pytest.mark.parametrize("name,before,op,args,after,result", CASES, ids=[c[0] for c in CASES])
def test_apply(name, before, op, args, after, result):
    snapshot = None if before is None else dict(before)
    assert rows.apply(before, op, args, NOW) == (after, result)
    assert before == snapshot  # the input row is never changed in place


@pytest.mark.parametrize("stored,expected", [
    ({"failures": "x", "needs_login": 1, "rate_limits": []}, row(needs_login=True)),
    ({"cooldown_until": NOW, "extra": 1}, row(cooldown_until=NOW)),
    ("not a row", row()),
])
def test_normalise_reads_any_stored_row(stored, expected):
    assert rows.normalise(stored) == expected


def test_unknown_change_is_an_error():
    with pytest.raises(ValueError):
        rows.apply(None, "explode", {}, NOW)
