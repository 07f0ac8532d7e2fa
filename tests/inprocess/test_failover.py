"""The executor's failure paths, in process: what the client sees for each upstream fault."""
from __future__ import annotations

import time


BODY = {"model": "gpt-5-codex", "input": "Say hello"}


def sse_types(resp) -> list[str]:
    out = []
    for line in resp.get_data().split(b"\n"):
        if line.startswith(b"event: "):
            out.append(line[7:].decode())
    return out


def test_one_account_usage_limit_gives_the_upstreams_own_429(make_client, upstream):
    gw = make_client()
    upstream.inject("usage_limit", resets_in=120)
    resp = gw.post("/v1/responses", BODY)
    err = resp.get_json()["error"]
    assert resp.status_code == 429
    assert err["code"] == "usage_limit_reached"
    assert err["message"] == "The usage limit has been reached"
    assert 110 <= int(resp.headers["Retry-After"]) <= 121
    # Next request: no upstream call, the same code, the reset time named.
    resp = gw.post("/v1/responses", BODY)
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "usage_limit_reached"
    assert 110 <= int(resp.headers["Retry-After"]) <= 121
    assert len(upstream.requests) == 1


def test_two_accounts_both_limited_name_the_earliest_reset(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    upstream.inject("usage_limit", account="acct-a", resets_in=100)
    upstream.inject("usage_limit", account="acct-b", resets_in=300)
    resp = gw.post("/v1/responses", BODY)
    err = resp.get_json()["error"]
    assert resp.status_code == 429 and err["code"] == "all_accounts_cooling_down"
    assert 90 <= int(resp.headers["Retry-After"]) <= 101
    earliest = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + 100))
    assert earliest in err["message"]
    assert sorted(r["account"] for r in upstream.requests) == ["acct-a", "acct-b"]


def test_in_stream_rate_limit_before_output_fails_over(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    upstream.inject("error_event")  # whichever account is asked first
    resp = gw.post("/v1/responses", dict(BODY, stream=True))
    assert resp.status_code == 200
    types = sse_types(resp)
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "error" not in types
    first, second = upstream.requests
    assert first["account"] != second["account"] and first.get("fault") == "error_event"


def test_in_stream_failure_cools_the_account_at_most_once_per_request(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    upstream.inject("response_failed", count=4)
    resp = gw.post("/v1/responses", BODY)
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "server_error"
    # each account: the attempt and its one retry, then the client is told
    first, retry, other, other_retry = [r["account"] for r in upstream.requests]
    assert first == retry != other == other_retry


def test_one_server_error_is_retried_on_the_same_account_which_does_not_cool(make_client,
                                                                             upstream):
    """A single 500 (or an early response.failed server_error) is an unlucky attempt,
    not a bad account: the conversation keeps its account and its prompt cache."""
    gw = make_client(accounts=("acct-a", "acct-b"))
    chat = {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "hi"}]}
    for fault in ("http_500", "response_failed"):
        seen = len(upstream.requests)
        upstream.inject(fault)
        resp = gw.post("/v1/chat/completions", chat)
        assert resp.status_code == 200 and resp.get_json()["object"] == "chat.completion"
        first, retry = upstream.requests[seen:]
        assert first["account"] == retry["account"]
        assert first["fault"] == fault and retry["fault"] is None
        resp = gw.post("/v1/chat/completions", chat)  # the next turn: same account, not cooling
        assert resp.status_code == 200 and upstream.requests[-1]["account"] == first["account"]


def test_http_500_twice_fails_over_to_the_next_account(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    upstream.inject("http_500", count=2)
    resp = gw.post("/v1/chat/completions",
                   {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200 and resp.get_json()["object"] == "chat.completion"
    accounts = [r["account"] for r in upstream.requests]
    assert accounts[0] == accounts[1] != accounts[2] and len(accounts) == 3


def test_a_503_that_names_its_wait_is_not_retried_at_once():
    from gateway.failures import UpstreamFailure
    assert not UpstreamFailure(503, "busy", retry_at=time.time() + 30) \
        .retried_on_same_account
    assert UpstreamFailure(503, "busy").retried_on_same_account
    assert not UpstreamFailure(529, "overloaded", "overloaded").retried_on_same_account
    assert not UpstreamFailure(504, "slow", "upstream_timeout").retried_on_same_account
    assert not UpstreamFailure(502, "refused", "upstream_unreachable").retried_on_same_account


def test_unreachable_upstream_is_502_in_each_dialect(make_client, upstream):
    gw = make_client(upstream_codex_base_url="http://127.0.0.1:9/backend-api/codex")
    resp = gw.post("/v1/responses", BODY)
    assert resp.status_code == 502
    assert resp.get_json()["error"]["code"] == "upstream_unreachable"


def test_records_are_finished_once_with_the_outcome(make_client, upstream, caplog):
    gw = make_client()
    caplog.set_level("INFO", logger="gateway.request")
    gw.post("/v1/responses", BODY)
    gw.post("/v1/responses", {"model": "gpt-5-codex"})
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.request"]
    assert len(lines) == 2
    assert "dialect=responses transport=http status=200 outcome=completed" in lines[0]
    assert "input_tokens=" in lines[0] and "account=codex-acct-a" in lines[0]
    assert "status=400 outcome=rejected code=invalid_request" in lines[1]


def test_a_connection_that_breaks_before_the_answer_is_retried_on_the_same_account(
        make_client, upstream):
    """A network blip is not the account's: the conversation keeps its account (and its
    prompt cache), and the account does not cool."""
    gw = make_client(accounts=("acct-a", "acct-b"), upstream_codex_transport="http")
    upstream.inject("reset_after_created")
    resp = gw.post("/v1/responses", dict(BODY, stream=True, prompt_cache_key="conv-blip"))
    types = sse_types(resp)
    assert types.count("response.created") == 1 and types[-1] == "response.completed"
    broken, served = upstream.requests
    assert broken["fault"] == "reset_after_created" and served.get("fault") is None
    assert broken["account"] == served["account"]
    again = gw.post("/v1/responses", dict(BODY, prompt_cache_key="conv-blip"))
    assert again.status_code == 200
    assert upstream.requests[-1]["account"] == served["account"]  # not cooling


def test_a_connection_that_breaks_twice_fails_over_and_cools(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"), upstream_codex_transport="http")
    upstream.inject("reset_after_created", count=2)
    resp = gw.post("/v1/responses", dict(BODY, prompt_cache_key="conv-blip"))
    assert resp.status_code == 200
    first, retry, other = upstream.requests
    assert first["account"] == retry["account"] != other["account"]
    assert [r.get("fault") for r in (first, retry, other)] == \
        ["reset_after_created", "reset_after_created", None]
