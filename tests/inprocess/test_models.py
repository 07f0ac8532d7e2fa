"""The model catalog through the app: suffixes, aliases, unknown names, both list shapes."""
from __future__ import annotations

import pytest

RESP = "/v1/responses"
CHAT = "/v1/chat/completions"


def test_effort_suffix_reaches_the_upstream_as_model_plus_effort(make_client, upstream):
    gw = make_client()
    resp = gw.post(RESP, {"model": "gpt-5.5-high", "input": "x"})
    assert resp.status_code == 200 and resp.headers["x-gateway-model"] == "gpt-5.5"
    sent = upstream.requests[-1]["body"]
    assert sent["model"] == "gpt-5.5" and sent["reasoning"]["effort"] == "high"


def test_an_explicit_effort_wins_over_the_suffix(make_client, upstream):
    gw = make_client()
    gw.post(RESP, {"model": "gpt-5.5(high)", "input": "x", "reasoning": {"effort": "low"}})
    assert upstream.requests[-1]["body"]["reasoning"]["effort"] == "low"
    gw.post(CHAT, {"model": "gpt-5.5-xhigh", "reasoning_effort": "minimal",
                   "messages": [{"role": "user", "content": "x"}]})
    assert upstream.requests[-1]["body"]["reasoning"]["effort"] == "minimal"


def test_claude_names_map_to_codex_models(make_client, upstream, caplog):
    gw = make_client()
    caplog.set_level("INFO", logger="gateway.request")
    resp = gw.post(CHAT, {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 200 and resp.get_json()["model"] == "claude-opus-5-5"
    assert upstream.requests[-1]["body"]["model"] == "gpt-5.5"
    assert "model=claude-opus-5-5->gpt-5.5" in [r for r in caplog.records if r.name == "gateway.request"][-1].getMessage()
    gw.post(RESP, {"model": "claude-haiku-4-5", "input": "x"})
    assert upstream.requests[-1]["body"]["model"] == "gpt-5.4-mini"


@pytest.mark.parametrize("path, body", [
    (RESP, {"model": "no-such-model", "input": "x"}),
    (CHAT, {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
])
def test_unknown_model_is_404_before_any_upstream_request(make_client, upstream, path, body):
    gw = make_client()
    resp = gw.post(path, body)
    err = resp.get_json()["error"]
    assert resp.status_code == 404 and err["code"] == "model_not_found"
    assert "gpt-5.5" in err["message"]  # names what is available
    assert upstream.requests == []


def test_models_in_openai_shape(make_client):
    gw = make_client()
    resp = gw.client.get("/v1/models", headers={"Authorization": "Bearer test-client-key-0123456789"})
    body = resp.get_json()
    assert body["object"] == "list"
    ids = {m["id"]: m for m in body["data"]}
    assert ids["gpt-5.5"]["owned_by"] == "openai" and ids["gpt-5.5"]["context_window"] > 0


def test_models_in_codex_shape_with_client_version(make_client):
    gw = make_client()
    resp = gw.client.get("/v1/models?client_version=0.171.0",
                         headers={"Authorization": "Bearer test-client-key-0123456789"})
    assert resp.status_code == 200 and isinstance(resp.get_json()["models"], list)
    assert resp.headers["ETag"]
