"""Per-key policy in process: each refusal in the dialect's own shape, before any
upstream request; the account's quota only for a --show-quota key."""
from __future__ import annotations

import time

import pytest

from gateway.auth import config_key_id
from gateway.policy.model import Policy
from tests.support import CLIENT_KEY

KEY_ID = config_key_id(CLIENT_KEY)
RESPONSES = ("/v1/responses", {"model": "gpt-5-codex", "input": "Say hello"})
CHAT = ("/v1/chat/completions", {"model": "gpt-5-codex",
                                 "messages": [{"role": "user", "content": "Say hello"}]})
MESSAGES = ("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 100,
                             "messages": [{"role": "user", "content": "Say hello"}]})
GEMINI = ("/v1beta/models/gpt-5-codex:generateContent",
          {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]})


def with_policy(make_client, **policy):
    gw = make_client(usage_quota_poll_seconds=0)
    gate = gw.app.extensions["gateway"].executor.gate
    gate.policies.put(KEY_ID, Policy(**policy))
    return gw, gate


@pytest.mark.parametrize("path,body", [RESPONSES, CHAT, MESSAGES, GEMINI])
def test_a_model_outside_the_list_is_403_in_each_dialect(make_client, upstream, path, body):
    gw, _ = with_policy(make_client, models=("gpt-5.4",))
    resp = gw.post(path, body)
    assert resp.status_code == 403, resp.get_data()
    err = resp.get_json()
    if path == "/v1/messages":
        assert err["type"] == "error" and err["error"]["type"] == "permission_error"
    elif path.startswith("/v1beta/"):
        assert err["error"]["code"] == 403 and err["error"]["status"] == "PERMISSION_DENIED"
    else:
        assert err["error"]["code"] == "model_not_allowed" and err["error"]["param"] == "model"
    assert "Allowed: gpt-5.4" in err["error"]["message"]
    assert upstream.requests == []
    if path.startswith("/v1beta/"):  # a suffix of an allowed model
        ok = gw.post(path.replace("gpt-5-codex", "gpt-5.4-high"), body)
    else:
        ok = gw.post(path, dict(body, model="gpt-5.4-high"))
    assert ok.status_code == 200, ok.get_data()


@pytest.mark.parametrize("path,body", [RESPONSES, CHAT, MESSAGES])
def test_requests_per_minute_is_429_with_retry_after_in_each_dialect(make_client, upstream,
                                                                     path, body):
    gw, _ = with_policy(make_client, requests_per_minute=2)
    assert [gw.post(path, body).status_code for _ in range(2)] == [200, 200]
    resp = gw.post(path, body)
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    err = resp.get_json()["error"]
    assert "2 requests per minute" in err["message"]
    assert len(upstream.requests) == 2


def test_expired_and_revoked_keys_are_401_everywhere(make_client, upstream):
    gw, gate = with_policy(make_client, expires_at=time.time() - 1)
    for path, body in (RESPONSES, CHAT, MESSAGES):
        resp = gw.post(path, body)
        assert resp.status_code == 401, path
    assert gw.client.get("/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"}
                         ).status_code == 401
    assert "expired" in resp.get_json()["error"]["message"]
    gate.policies.put(KEY_ID, Policy(revoked=True))
    resp = gw.post(*RESPONSES)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "key_revoked"
    gate.policies.put(KEY_ID, Policy())  # takes effect on the next request
    assert gw.post(*RESPONSES).status_code == 200
    assert len(upstream.requests) == 1


def test_the_third_concurrent_stream_is_refused_at_once(make_client, upstream):
    gw, gate = with_policy(make_client, concurrency=2)
    body = dict(RESPONSES[1], stream=True)
    open_streams = [gw.client.post("/v1/responses", json=body, buffered=False,
                                   headers={"Authorization": f"Bearer {CLIENT_KEY}"})
                    for _ in range(2)]
    assert [r.status_code for r in open_streams] == [200, 200]
    third = gw.post("/v1/responses", body)
    assert third.status_code == 429 and third.headers["Retry-After"] == "1"
    assert "2 answers in flight" in third.get_json()["error"]["message"]
    for r in open_streams:
        r.get_data()
        r.close()
    gate.flush()
    assert gw.post("/v1/responses", body).status_code == 200
    assert len(upstream.requests) == 3


def _quota_headers(resp) -> set[str]:
    return {h.lower() for h in resp.headers.keys() if h.lower().startswith("x-codex-")} - \
        {"x-codex-turn-state"}


def test_only_a_show_quota_key_sees_the_accounts_quota(make_client, upstream):
    upstream.configure(rate_limit_events=True)
    gw, gate = with_policy(make_client, tokens_per_day=100000)
    body = dict(RESPONSES[1], stream=True)
    resp = gw.post("/v1/responses", body)
    assert resp.status_code == 200
    assert _quota_headers(resp) == set()
    assert b"rate_limits" not in resp.get_data() and b"used_percent" not in resp.get_data()
    usage = gw.client.get("/v1/usage", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert "quota" not in usage.get_json() and b"used_percent" not in usage.get_data()

    gate.policies.put(KEY_ID, Policy(show_quota=True))
    resp = gw.post("/v1/responses", body)
    assert {"x-codex-primary-used-percent", "x-codex-secondary-reset-at"} <= _quota_headers(resp)
    assert b"event: codex.rate_limits" in resp.get_data()
    usage = gw.client.get("/v1/usage", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert usage.get_json()["quota"][0]["primary"]["used_percent"] == 12.0


def test_the_usage_endpoint_reports_the_key_and_nothing_else(make_client, upstream):
    gw, gate = with_policy(make_client, tokens_per_day=50000, requests_per_minute=10)
    assert gw.post(*RESPONSES).status_code == 200
    gate.flush()
    usage_service = gw.app.extensions["gateway"].usage
    usage_service.writer.flush()
    report = gw.client.get("/v1/usage",
                           headers={"Authorization": f"Bearer {CLIENT_KEY}"}).get_json()
    row = upstream.requests[0]
    assert report["id"] == KEY_ID and report["object"] == "key.usage"
    assert report["today"]["requests"] == 1
    spent = report["today"]["tokens"]
    assert spent == report["today"]["input_tokens"] + report["today"]["output_tokens"] > 0
    assert report["today"]["input_tokens"] == row["input_tokens"]
    day = report["limits"]["tokens_per_day"]
    assert (day["limit"], day["used"], day["remaining"]) == (50000, spent, 50000 - spent)
    assert report["limits"]["requests_per_minute"]["used"] == 1
    assert "acct-a" not in str(report)


def test_the_status_page_shows_each_keys_limits_as_bars(make_client, upstream):
    from tests.support import register_secret
    admin = register_secret("test-admin-key-policy-5150")
    gw = make_client(usage_quota_poll_seconds=0, auth_admin_keys=admin)
    gate = gw.app.extensions["gateway"].executor.gate
    gate.policies.put(KEY_ID, Policy(tokens_per_day=50000, concurrency=2, models=("gpt-5.4",)))
    assert gw.post(*RESPONSES).status_code == 403
    assert gw.post("/v1/responses", dict(RESPONSES[1], model="gpt-5.4")).status_code == 200
    gate.flush()
    page = gw.client.get("/status", headers={"Authorization": f"Bearer {admin}"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-key="{KEY_ID}"' in html and 'data-limit="tokens_per_day"' in html
    assert 'data-limit="concurrency"' in html and "of 50,000 tokens today" in html
    assert CLIENT_KEY not in html
