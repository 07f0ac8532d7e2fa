"""F5-F7, F9: client-controlled strings and the keys file, in process (docs/security.md).

A model name that cannot be logged, stored or sent back as a header is a clear
400 before anything happens; the one request line in the log stays one line;
an emptied or removed keys file refuses everyone.
"""
from __future__ import annotations

import logging

import pytest

from gateway import auth
from tests.support import register_secret

ADMIN_KEY = register_secret("test-admin-key-strings-0123456789")
BAD_MODELS = [
    ("newline", "gpt-5-codex\nX-Evil: injected continuity=- key=-"),
    ("carriage return", "gpt-x\r\nX-Evil: 1"),
    ("1 MiB", "m" * (1 << 20)),
    ("markup, 4 KiB", "<" * 4096),
    ("not Latin-1", "gpt-\u6a21\u578b"),
    ("NUL", "gpt-5\x00codex"),
]
REQUESTS = [
    ("/v1/responses", lambda m: {"model": m, "input": "hi"}),
    ("/v1/chat/completions", lambda m: {"model": m, "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/messages", lambda m: {"model": m, "max_tokens": 5,
                                "messages": [{"role": "user", "content": "hi"}]}),
]


@pytest.mark.parametrize("allow", [False, True], ids=["catalog", "models.allow glob"])
def test_a_bad_model_name_is_a_clear_400_before_anything(make_client, upstream, caplog, allow):
    settings = {"auth_admin_keys": ADMIN_KEY, "usage_quota_poll_seconds": 0}
    if allow:
        settings["models_allow"] = '["gpt-*", "m*", "<*"]'
    gw = make_client(**settings)
    with caplog.at_level(logging.INFO, "gateway"):
        for _, model in BAD_MODELS:
            for path, body in REQUESTS:
                resp = gw.post(path, body(model))
                err = resp.get_json()["error"]
                assert resp.status_code == 400, (path, model[:20], resp.status_code)
                assert "model" in err["message"].lower() and len(resp.get_data()) < 2000
                assert all(len(v) < 300 and "\n" not in v for v in resp.headers.values())
    assert upstream.requests == []  # the upstream never ran
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.request"]
    assert lines and all("\n" not in line and len(line) < 1000 for line in lines)
    assert not any(line.startswith("X-Evil") for line in caplog.text.splitlines())
    usage = gw.app.extensions["gateway"].usage
    usage.writer.flush()
    rows = usage.store.recent_errors(0, 1000)
    assert rows and all(r.model_asked is None for r in rows)  # nothing of the name stored
    page = gw.client.get("/status", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert page.status_code == 200 and len(page.get_data()) < 200_000


def test_a_long_but_sane_model_name_still_reaches_the_catalog(make_client):
    gw = make_client()
    resp = gw.post("/v1/responses", {"model": "gpt-" + "x" * 100, "input": "hi"})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_the_keys_file_removed_at_runtime_refuses_everyone(make_client, tmp_path, caplog, how):
    """F5 through the app: keys in the file (none in config), then the file goes."""
    gw = make_client(auth_client_keys="")
    keys_file = tmp_path / "state" / "client_keys"
    key = register_secret(auth.new_key())
    auth.add_key(keys_file, "laptop", key)
    body = {"model": "gpt-5-codex", "input": "hi"}
    assert gw.post("/v1/responses", body, key=key).status_code == 200
    if how == "removed":
        keys_file.unlink()
    else:
        keys_file.write_text("")
    with caplog.at_level(logging.ERROR, "gateway.auth"):
        for k in (None, key):
            resp = gw.post("/v1/responses", body, key=k)
            assert resp.status_code == 401, resp.get_data()
            assert resp.get_json()["error"]["code"] == "client_keys_missing"
        assert gw.client.get("/v1/models").status_code == 401
    assert "refusing every request" in caplog.text
    assert gw.client.get("/healthz").status_code == 200
    auth.add_key(keys_file, "laptop", key)
    assert gw.post("/v1/responses", body, key=key).status_code == 200


@pytest.mark.parametrize("name", ["gpt%01X-Evil:%201", "m" * 300, "gpt-%E6%A8%A1"])
def test_a_bad_model_name_in_a_gemini_url_is_a_400(make_client, upstream, name):
    gw = make_client()
    resp = gw.post(f"/v1beta/models/{name}:generateContent",
                   {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert resp.status_code == 400, resp.get_data()[:300]
    assert "model" in resp.get_json()["error"]["message"].lower()
    assert upstream.requests == []
