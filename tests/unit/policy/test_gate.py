"""Per-key policy: the data, the window arithmetic, the admission rule, and the
two counter stores (SQLite, and a real redis-server) held to the same cases."""
from __future__ import annotations

import calendar
import threading

import pytest

from gateway.errors import GatewayError
from gateway.policy import admission
from gateway.policy.counters import SQLiteCounters
from gateway.policy.gate import Gate
from gateway.policy.admission import Plan, Seen, day_window, plan, refused_by, refusal, week_window
from gateway.policy.model import Policy, parse_expires, parse_limit
from gateway.policy.redis_counters import RedisCounters
from gateway.policy.store import FilePolicies
from gateway.record import Outcome, RequestRecord
from gateway.state.link import Link
from tests.redis_server import RedisServer, redis_binary

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


@pytest.fixture(scope="module")
def redis_srv():
    srv = RedisServer(redis_binary(), name="redis-policy").start()
    yield srv
    srv.cleanup()


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


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def _gate(tmp_path, clock, **policy):
    store = FilePolicies(tmp_path / "keys.policy.json")
    store.put("key-1", Policy(**policy))
    return Gate(store, SQLiteCounters(tmp_path / "policy.sqlite"), clock=clock)


def _record():
    return RequestRecord(dialect="responses")


def test_the_gate_lets_exactly_n_requests_through_in_a_minute(tmp_path):
    clock = Clock()
    gate = _gate(tmp_path, clock, requests_per_minute=30)
    results = []
    for i in range(40):
        clock.now = T0 + i * 0.5  # 40 requests in 20 s
        try:
            gate.admit("key-1", "gpt-5.4", {}, _record())
            results.append(200)
        except GatewayError as err:
            results.append(err.status)
    assert results == [200] * 30 + [429] * 10
    clock.now = T0 + 60.0  # the first request has left the minute: one more goes
    gate.admit("key-1", "gpt-5.4", {}, _record())


def test_the_gate_refuses_models_expired_and_revoked_keys(tmp_path):
    clock = Clock()
    gate = _gate(tmp_path, clock, models=("gpt-5.4",), expires_at=T0 + 10)
    gate.admit("key-1", "gpt-5.4", {}, _record())
    with pytest.raises(GatewayError) as err:
        gate.admit("key-1", "gpt-5.5", {}, _record())
    assert (err.value.status, err.value.code) == (403, "model_not_allowed")
    assert "gpt-5.4" in err.value.message
    clock.now = T0 + 10
    with pytest.raises(GatewayError) as err:
        gate.check_key("key-1")
    assert (err.value.status, err.value.code) == (401, "key_expired")
    gate.policies.put("key-1", Policy(revoked=True))
    with pytest.raises(GatewayError) as err:
        gate.admit("key-1", "gpt-5.4", {}, _record())
    assert (err.value.status, err.value.code) == (401, "key_revoked")
    gate.admit("key-other", "anything", {}, _record())  # no policy: no limit


def test_concurrent_answers_never_spend_more_than_one_answer_past_the_budget(tmp_path):
    """16 threads, each request costing its estimate or less: the budget ends
    below limit + one request."""
    gate = _gate(tmp_path, Clock(), tokens_per_day=20000)
    body = {"model": "m", "input": "x" * 6000}  # ~1.5k + 4096 allowance reserved
    cost = 3000
    charged = []
    lock = threading.Lock()

    def worker():
        while True:
            rec = _record()
            try:
                gate.admit("key-1", "m", body, rec)
            except GatewayError as err:
                if err.status != 429 or "reserved" in err.message:
                    continue
                return
            rec.input_tokens, rec.output_tokens = cost - 100, 100
            with lock:
                charged.append(cost)
            rec.finish(200, Outcome.COMPLETED)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    gate.flush()
    total = sum(charged)
    assert 20000 <= total <= 20000 + cost
    seen = gate.counters.seen("key-1", day_window(T0)[:1] + week_window(T0)[:1], T0)
    assert seen.charged["d:2026-12-09"] == total and seen.in_flight == 0


# -- the keys commands ------------------------------------------------------------------

def test_keys_create_update_revoke_and_list_keep_the_policy_beside_the_digest(state_env,
                                                                              capsys):
    import json as _json

    from gateway import cli
    from gateway.auth import key_id

    assert cli.main(["keys", "create", "--name", "partner", "--models", "gpt-5.4-high,gpt-5.4",
                     "--tokens-per-day", "20k", "--requests-per-minute", "30",
                     "--concurrency", "2", "--expires", "30d"]) == 0
    key = capsys.readouterr().out.strip()
    ident = key_id(key)
    stored = _json.loads((state_env / "client_keys.policy.json").read_text())
    assert key not in str(stored) and set(stored) == {ident}
    assert stored[ident]["models"] == ["gpt-5.4"]  # a suffix resolved through the catalog
    assert stored[ident]["tokens_per_day"] == 20000 and stored[ident]["concurrency"] == 2
    assert cli.main(["keys", "update", "partner", "--tokens-per-day", "none", "--show-quota",
                     "--models", "all"]) == 0
    assert "holds from the next request" in capsys.readouterr().out
    policy = FilePolicies(state_env / "client_keys.policy.json").get(ident)
    assert policy.tokens_per_day is None and policy.show_quota and policy.models == ()
    assert policy.requests_per_minute == 30  # untouched flags stay
    assert cli.main(["keys", "revoke", ident]) == 0
    assert cli.main(["keys", "list", "--json"]) == 0
    (row,) = _json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert (row["id"], row["name"], row["status"]) == (ident, "partner", "revoked")
    assert row["limits"]["requests_per_minute"]["limit"] == 30
    assert row["today"]["requests"] == 0
    assert cli.main(["keys", "list"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"partner\t{ident}\trevoked\tREVOKED")


def test_keys_flags_are_checked_before_anything_is_written(state_env, capsys):
    from gateway import cli

    assert cli.main(["keys", "create", "--name", "x", "--models", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert cli.main(["keys", "create", "--name", "x", "--expires", "soon"]) == 2
    assert not (state_env / "client_keys").exists()
    assert cli.main(["keys", "update", "nobody", "--concurrency", "2"]) == 2
    assert "no client key named 'nobody'" in capsys.readouterr().err


def test_counters_out_of_reach_serve_the_request_and_say_so_once(tmp_path, caplog):
    from gateway.state import StateUnavailable

    class Down:
        def admit(self, plan):
            raise StateUnavailable("redis is down")

    store = FilePolicies(tmp_path / "keys.policy.json")
    store.put("key-1", Policy(models=("gpt-5.4",), requests_per_minute=1))
    gate = Gate(store, Down(), clock=Clock())
    with caplog.at_level("ERROR", logger="gateway.policy"):
        for _ in range(3):
            gate.admit("key-1", "gpt-5.4", {}, _record())
    assert len(caplog.records) == 1 and "cannot be reached" in caplog.records[0].message
    with pytest.raises(GatewayError):  # the model list still holds
        gate.admit("key-1", "gpt-5.5", {}, _record())
