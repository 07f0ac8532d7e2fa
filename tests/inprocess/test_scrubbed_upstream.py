"""F4/F10: an upstream that echoes what it was sent (the account's token and
ChatGPT account id) and puts markup in its error codes. Nothing of it may reach a
client (body, header, SSE frame) or a metric label (docs/security.md)."""
from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.security import scrub
from gateway.state.files import FileStore
from gateway.state.records import openai_record
from tests.support import OPENAI_KEY, register_secret

ADMIN_KEY = register_secret("test-admin-key-scrub-0123456789")
ACCOUNT = "acct-echo-7f3a9c"
ECHO = "you sent {authorization} for account {account_id}"
MARKUP = "<img src=x onerror=alert(1)>"

# (name, fault, params, count): count 2 where the gateway tries the same account twice
FAULTS = [
    ("400", "echo", {"status": 400, "message": ECHO, "code": MARKUP}, 1),
    ("401 -> 503", "echo", {"status": 401, "message": ECHO, "code": "token_expired"}, 2),
    ("403 -> 503", "echo", {"status": 403, "message": ECHO, "code": MARKUP}, 2),
    ("429", "echo", {"status": 429, "message": ECHO, "code": "rate_limit_exceeded",
                     "headers": {"x-codex-turn-state": "{authorization}"}}, 1),
    ("500 -> 502", "echo", {"status": 500, "message": ECHO, "code": MARKUP}, 2),
    ("in-stream response.failed", "response_failed", {"message": ECHO, "code": MARKUP}, 2),
    ("in-stream error", "error_event", {"message": ECHO, "code": "rate_limit_exceeded"}, 2),
]
REQUESTS = [
    ("/v1/responses", {"model": "gpt-5-codex", "input": "hi", "stream": True}),
    ("/v1/responses", {"model": "gpt-5-codex", "input": "hi", "stream": False}),
    ("/v1/chat/completions", {"model": "gpt-5-codex", "stream": True,
                              "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/chat/completions", {"model": "gpt-5-codex",
                              "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/messages", {"model": "gpt-5-codex", "max_tokens": 10, "stream": True,
                      "messages": [{"role": "user", "content": "hi"}]}),
]


@pytest.fixture
def gw(make_client, upstream):
    return make_client(accounts=(ACCOUNT,), auth_admin_keys=ADMIN_KEY,
                       usage_quota_poll_seconds=0,
                       oauth_token_url=upstream.base_url + "/no-refresh-here")


def _secrets(gw) -> list[str]:
    pool = gw.app.extensions["gateway"].pool
    (account,) = pool.accounts()
    creds = pool.stored_credentials(account)
    return [creds.token, creds.account_id, "Bearer "]


def _visible(resp) -> str:
    """Everything a client sees of an answer."""
    head = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
    return head + "\n" + resp.get_data(as_text=True)


@pytest.mark.parametrize("name,fault,params,count", FAULTS, ids=[f[0] for f in FAULTS])
def test_an_echoing_upstream_leaks_nothing_to_clients(gw, upstream, name, fault, params, count):
    secrets = _secrets(gw)
    for path, body in REQUESTS:
        upstream.inject(fault, count=count, **params)
        resp = gw.post(path, body)
        seen = _visible(resp)
        assert resp.status_code != 200 or "event:" in seen or "data:" in seen, seen[:300]
        assert resp.status_code < 500 or resp.status_code in (502, 503, 529), seen[:300]
        for secret in secrets:
            assert secret not in seen, (path, body.get("stream"), secret[:10], seen[:600])
        assert MARKUP not in seen and "<img" not in seen, seen[:600]
        upstream.reset()
        pool = gw.app.extensions["gateway"].pool
        for account in pool.accounts():  # the next request must reach the upstream again
            pool.health.clear(account.id)


def test_metric_labels_take_no_upstream_text(gw, upstream):
    for _, fault, params, count in FAULTS:
        upstream.inject(fault, count=count, **params)
        gw.post("/v1/responses", {"model": "gpt-5-codex", "input": "hi"})
        upstream.reset()
        pool = gw.app.extensions["gateway"].pool
        for account in pool.accounts():
            pool.health.clear(account.id)
    text = gw.client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
                         ).get_data(as_text=True)
    token = _secrets(gw)[0]
    assert token not in text and "Bearer" not in text and "<img" not in text
    codes = {s.labels["code"] for f in text_string_to_metric_families(text)
             for s in f.samples if "code" in s.labels}
    assert codes, "no upstream failure was counted"
    assert all(c in scrub.METRIC_CODES or c.startswith("http_") or c == scrub.OTHER
               for c in codes), codes


def test_an_api_key_account_401_never_shows_the_key(make_client, upstream, tmp_path):
    """The OpenAI API answers a bad key with its masked tail: neither the key nor the tail."""
    gw = make_client(accounts=())
    FileStore(tmp_path / "state").save(openai_record(OPENAI_KEY, label="api"))
    tail = OPENAI_KEY[:3] + "*" * 20 + OPENAI_KEY[-4:]
    upstream.inject("echo", count=3, status=401, code="invalid_api_key",
                    message=f"Incorrect API key provided: {tail}. Sent {{authorization}}.")
    resp = gw.post("/v1/responses", {"model": "gpt-5-codex", "input": "hi"})
    seen = _visible(resp)
    assert resp.status_code == 503, seen
    assert OPENAI_KEY not in seen and tail not in seen and OPENAI_KEY[-4:] + "." not in seen


def test_the_scrubber_itself():
    scrub.remember("tok-0123456789abcdef", "acct-xyz-123")
    dirty = ("Bearer abc.def token tok-0123456789abcdef acct-xyz-123 sk-proj-****abcd "
             "eyJhbGciOi.eyJzdWIiOi.sig \x1b[31m\nnext\u2028line " + "x" * 2000)
    clean = scrub.upstream_text(dirty)
    for bad in ("abc.def", "tok-0123", "acct-xyz-123", "sk-proj", "eyJ", "\x1b", "\n", "\u2028"):
        assert bad not in clean
    assert len(clean) <= scrub.MAX_MESSAGE
    assert scrub.upstream_code(MARKUP) is None and scrub.upstream_code("token_expired")
    assert scrub.metric_code(MARKUP) == "other" and scrub.metric_code("http_401") == "http_401"
    assert json.loads(json.dumps(scrub.client_text("a\nb"))) == "a\\x0ab"
