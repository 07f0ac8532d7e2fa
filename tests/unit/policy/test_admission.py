"""The admission rule: windows, the estimate, which limit refuses and what the refusal says."""
from __future__ import annotations

import calendar

import pytest

from gateway.policy import admission
from gateway.policy.admission import Plan, Seen, day_window, plan, refused_by, refusal, week_window
from gateway.policy.model import Policy

T0 = calendar.timegm((2026, 12, 9, 10, 0, 0))  # a Wednesday


def test_windows_are_the_utc_day_and_the_iso_week():
    name, start, end = day_window(T0 + 0.5)
    assert (name, start, end) == ("d:2026-12-09", T0 - 10 * 3600, T0 + 14 * 3600)
    monday = calendar.timegm((2026, 12, 7, 0, 0, 0))
    assert week_window(T0) == ("w:2026-12-07", monday, monday + 7 * 86400)
    assert week_window(monday)[1] == monday and week_window(monday - 1)[1] == monday - 7 * 86400


def test_the_estimate_is_the_body_in_tokens_plus_the_answer_allowance():
    body = {"model": "m", "input": "x" * 400}
    assert admission.estimate_tokens(body) == len('{"model":"m","input":""}') // 4 + 100 + \
        admission.OUTPUT_ALLOWANCE
    assert admission.estimate_tokens(dict(body, max_output_tokens=10)) < 200


def _plan(**policy) -> Plan:
    return plan(Policy(**policy), "key-1", "lease-1", T0, estimate=1000)


@pytest.mark.parametrize("policy,seen,refused", [
    ({"requests_per_minute": 3}, Seen(requests=2), None),
    ({"requests_per_minute": 3}, Seen(requests=3), "requests_per_minute"),
    ({"concurrency": 2}, Seen(in_flight=1), None),
    ({"concurrency": 2}, Seen(in_flight=2), "concurrency"),
    # a spent budget refuses; nothing in flight: any unspent budget lets one in
    ({"tokens_per_day": 5000}, Seen(charged={"d:2026-12-09": 5000}), "tokens_per_day"),
    ({"tokens_per_day": 5000}, Seen(charged={"d:2026-12-09": 4999}), None),
    # others in flight: the estimate must fit beside their reservations
    ({"tokens_per_day": 5000}, Seen(in_flight=1, reserved=3000,
                                    charged={"d:2026-12-09": 1000}), None),
    ({"tokens_per_day": 5000}, Seen(in_flight=1, reserved=3000,
                                    charged={"d:2026-12-09": 1001}), "tokens_per_day"),
    ({"tokens_per_week": 5000}, Seen(charged={"w:2026-12-07": 6000}), "tokens_per_week"),
    ({"tokens_per_week": 5000}, Seen(charged={"w:2026-11-30": 6000}), None),  # last week
])
def test_the_admission_rule(policy, seen, refused):
    assert refused_by(_plan(**policy), seen) == refused


def test_refusals_name_the_limit_and_its_reset():
    p = _plan(requests_per_minute=30)
    err = refusal(p, "requests_per_minute", Seen(requests=30, oldest=T0 - 48.5))
    assert (err.status, err.code, err.retry_after) == (429, "key_requests_per_minute_exceeded", 12)
    assert "30 requests per minute" in err.message and "12 s" in err.message
    p = _plan(tokens_per_day=20000)
    err = refusal(p, "tokens_per_day", Seen(charged={"d:2026-12-09": 20500}))
    assert err.retry_after == 14 * 3600 and "2026-12-10 00:00:00 UTC" in err.message
    assert "20000 tokens per day" in err.message and err.headers() == {"Retry-After": "50400"}
    err = refusal(_plan(concurrency=2), "concurrency", Seen(in_flight=2))
    assert err.retry_after == 1 and "2 answers in flight" in err.message
