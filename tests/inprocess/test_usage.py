"""Usage rows and metrics in process: one row per request whatever its fate, what the
queue and the store could not keep is counted, and only admin keys see any of it."""
from __future__ import annotations

import base64

from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import key_id
from tests.support import register_secret
from tests.support import CLIENT_KEY

ADMIN_KEY = register_secret("test-admin-key-0123456789")
LONG = ("You are a careful assistant. " * 220).strip()  # > 1024 tokens: cacheable
BODY = {"model": "gpt-5-codex", "input": "Say hello"}
CHAT = {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "Say hello"}]}


def gateway(make_client, **settings):
    settings.setdefault("auth_admin_keys", ADMIN_KEY)
    settings.setdefault("usage_quota_poll_seconds", 0)
    return make_client(accounts=settings.pop("accounts", ("acct-a",)), **settings)


def usage(gw):
    return gw.app.extensions["gateway"].usage


def metrics(gw, key=ADMIN_KEY) -> dict:
    resp = gw.client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.get_data()
    out: dict = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(found: dict, name: str, **labels) -> float:
    return sum(v for ls, v in found.get(name, []) if all(ls.get(k) == x for k, x in labels.items()))


def consume(resp) -> bytes:
    data = resp.get_data()
    resp.close()  # what gunicorn does at the end of an answer
    return data


def test_every_request_gives_one_row_and_one_count(make_client, upstream):
    gw = gateway(make_client, accounts=("acct-a", "acct-b"))
    cached_body = dict(BODY, instructions=LONG, prompt_cache_key="thread-1")
    answers = [
        gw.post("/v1/responses", cached_body),
        gw.post("/v1/responses", dict(cached_body, stream=True)),
        gw.post("/v1/chat/completions", CHAT),
        gw.post("/v1/chat/completions", dict(CHAT, stream=True)),
        gw.post("/v1/responses", BODY, key="wrong-key"),                       # 401
        gw.post("/v1/responses", {"model": "gpt-5-codex", "input": 7}),       # 400
    ]
    upstream.inject("http_500", count=2)  # retried once, then fails over: still one request
    answers.append(gw.post("/v1/responses", BODY))
    statuses = [r.status_code for r in answers]
    for r in answers:
        consume(r)
    assert statuses == [200, 200, 200, 200, 401, 400, 200]
    usage(gw).writer.flush()
    store = usage(gw).store
    (everything,) = store.query(0, "total")
    assert everything.requests == 7 and everything.errors == 2
    reported = sum(r["cached_tokens"] or 0 for r in upstream.requests if r["status"] == 200)
    assert reported > 0 and everything.cached_tokens == reported
    by_key = {a.group: a.requests for a in store.query(0, "key")}
    assert by_key == {key_id(CLIENT_KEY): 6, None: 1}  # the 401 has no key id
    codes = {e.error_code for e in store.recent_errors(0)}
    assert codes == {"invalid_api_key", "invalid_request"}

    found = metrics(gw)
    assert total(found, "codex_gateway_requests_total") == 7
    assert total(found, "codex_gateway_requests_total", status="401", outcome="rejected") == 1
    assert total(found, "codex_gateway_tokens_total", kind="cached") == reported
    assert total(found, "codex_gateway_upstream_errors_total") == 1  # the 500 that failed over
    assert total(found, "codex_gateway_open_streams") == 0
    assert total(found, "codex_gateway_usage_rows_written_total") == 7
    assert total(found, "codex_gateway_account_state", state="cooling") == 1  # after its 500
    assert total(found, "codex_gateway_account_state", state="ok") == 1


def test_metrics_and_status_refuse_clients_and_anonymous_callers(make_client):
    gw = gateway(make_client)
    for path in ("/metrics", "/status"):
        anon = gw.client.get(path)
        assert anon.status_code == 401 and anon.get_json()["error"]["code"] == "missing_api_key"
        client = gw.client.get(path, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        assert client.status_code == 403
        assert client.get_json()["error"]["code"] == "admin_key_required"
        wrong = gw.client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    assert "Basic" in gw.client.get("/status").headers["WWW-Authenticate"]
    assert "WWW-Authenticate" not in gw.client.get("/metrics").headers
    # an admin key does not open the API
    assert gw.post("/v1/responses", BODY, key=ADMIN_KEY).status_code == 401


def test_status_page_with_basic_auth_shows_no_secret(make_client, upstream):
    gw = gateway(make_client, accounts=("acct-a", "acct-b"))
    consume(gw.post("/v1/responses", BODY))
    usage(gw).writer.flush()
    auth = base64.b64encode(f"admin:{ADMIN_KEY}".encode()).decode()
    resp = gw.client.get("/status", headers={"Authorization": f"Basic {auth}"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "codex-acct-a" in page and "codex-acct-b" in page and 'data-window="primary"' in page
    for secret in (ADMIN_KEY, CLIENT_KEY, "rt-acct-a", "eyJ"):
        assert secret not in page


def test_a_full_queue_is_counted_and_requests_are_served(make_client):
    gw = gateway(make_client, usage_queue_size=2, usage_flush_seconds=60)
    statuses = [gw.post("/v1/responses", BODY).status_code for _ in range(5)]
    assert statuses == [200] * 5
    found = metrics(gw)
    assert total(found, "codex_gateway_usage_rows_dropped_total", reason="queue_full") == 3
    assert total(found, "codex_gateway_requests_total") == 5  # metrics do not depend on the queue
    assert usage(gw).writer.flush() == 2


def test_a_store_that_cannot_be_written_is_counted_and_logged_once(make_client, tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # a file where the store's directory should be: no one can write there
    gw = gateway(make_client, usage_path=str(blocker / "usage.sqlite"))
    caplog.set_level("INFO", "gateway.usage")
    for _ in range(3):
        assert gw.post("/v1/chat/completions", CHAT).status_code == 200
        usage(gw).writer.flush()
    found = metrics(gw)
    assert total(found, "codex_gateway_usage_rows_dropped_total", reason="store_error") == 3
    lines = [r for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(lines) == 1 and "requests are still served" in lines[0].getMessage()


def test_usage_can_be_turned_off(make_client):
    gw = gateway(make_client, usage_enabled="false")
    assert gw.post("/v1/responses", BODY).status_code == 200
    assert usage(gw).writer is None
    assert total(metrics(gw), "codex_gateway_requests_total") == 1
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert "Usage recording is off" in gw.client.get("/status", headers=auth).get_data(as_text=True)


def test_stale_accounts_are_polled_once_and_shown(make_client, upstream):
    gw = gateway(make_client, accounts=("acct-a", "acct-b"), usage_quota_poll_seconds=300)
    poller = usage(gw).poller
    assert {a.id for a in poller.due()} == {"codex-acct-a", "codex-acct-b"}
    for account in poller.due():
        assert poller.poll(account)
        assert not poller.poll(account)  # claimed for this interval
    assert sorted(p["account"] for p in upstream.usage_polls) == ["acct-a", "acct-b"]
    found = metrics(gw)
    assert total(found, "codex_gateway_account_quota_used_percent", window="primary") == 46
    assert total(found, "codex_gateway_account_quota_used_percent", window="secondary") == 122
    assert poller.due() == []
    assert len(upstream.requests) == 0  # the Responses calls are counted apart


def test_a_closed_app_s_usage_writer_stops_after_writing_its_rows(make_client):
    """``gateway.app.close``: the writer thread (and the quota polls it runs) ends, the
    rows queued before it are written, the pool's state watch is told to stop."""
    from gateway.app import close

    gw = gateway(make_client, usage_quota_poll_seconds=60)
    assert gw.post("/v1/responses", BODY).status_code == 200
    writer = usage(gw).writer
    thread = writer._thread
    assert thread is not None and thread.is_alive()
    close(gw.app)
    assert not thread.is_alive()
    assert writer.pending == 0
    assert usage(gw).store.query(0, "key"), "the request's row was written"
    assert gw.app.extensions["gateway"].pool.closed
