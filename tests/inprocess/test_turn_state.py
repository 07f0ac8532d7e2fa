"""x-codex-turn-state is only ever sent back to the account that issued it."""
from __future__ import annotations

from gateway.upstream.codex import TURN_STATE, bind_turn_state, turn_state_for

BODY = {"model": "gpt-5-codex", "input": "Say hello", "prompt_cache_key": "conv-1"}


def test_the_tag_binds_a_value_to_its_account():
    wrapped = bind_turn_state("ts-1", "acct-a")
    assert wrapped.startswith("ts-1")
    assert turn_state_for(wrapped, "acct-a") == "ts-1"
    assert turn_state_for(wrapped, "acct-b") is None
    assert turn_state_for("ts-1", "acct-a") is None  # untagged: issuer unknown, not sent


def test_a_turn_state_from_account_a_never_reaches_account_b_after_failover(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    first = gw.post("/v1/responses", BODY)
    assert first.status_code == 200
    served = upstream.requests[-1]["account"]
    other = "acct-b" if served == "acct-a" else "acct-a"
    state = first.headers[TURN_STATE]
    issued = upstream.requests[-1]["id"]
    # The same account gets its own value back, untagged.
    gw.post("/v1/responses", BODY, headers={TURN_STATE: state})
    assert upstream.requests[-1]["account"] == served
    assert upstream.requests[-1]["headers"][TURN_STATE] == f"ts-{issued}"
    # The serving account fails: the turn moves to the other one, without the state.
    upstream.inject("usage_limit", account=served, resets_in=120)
    moved = gw.post("/v1/responses", BODY, headers={TURN_STATE: state})
    assert moved.status_code == 200
    assert upstream.requests[-1]["account"] == other
    assert TURN_STATE not in {k.lower() for k in upstream.requests[-1]["headers"]}
    # What the client now holds is the new account's, and only it gets it back.
    assert turn_state_for(moved.headers[TURN_STATE], other) is not None


def test_the_served_service_tier_is_kept_in_the_record_and_the_usage_row(make_client, upstream):
    from gateway.usage.records import row_from_record
    gw = make_client()
    records = []
    gw.app.extensions["gateway"].executor.sinks += (records.append,)
    resp = gw.post("/v1/responses", {**BODY, "service_tier": "priority"})
    assert resp.status_code == 200
    assert upstream.requests[-1]["body"]["service_tier"] == "priority"
    assert records[-1].service_tier == "priority"
    assert row_from_record(records[-1]).service_tier == "priority"
    assert "service_tier=priority" in records[-1].log_line()
