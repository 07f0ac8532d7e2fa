"""The per-key gate: exactly n requests a minute, models, expiry and revocation, the token
budget under concurrent answers, counters out of reach."""
from __future__ import annotations

import calendar
import threading

import pytest

from gateway.errors import GatewayError
from gateway.policy.counters import SQLiteCounters
from gateway.policy.gate import Gate
from gateway.policy.admission import day_window, week_window
from gateway.policy.model import Policy
from gateway.policy.store import FilePolicies
from gateway.record import Outcome, RequestRecord

T0 = calendar.timegm((2026, 12, 9, 10, 0, 0))  # a Wednesday


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
