"""The backend's own model catalog: fetched, merged, followed when it changes."""
from __future__ import annotations

import pytest

from gateway.upstream.catalog import merge, model_of
from gateway.models import load_catalog

GATED = {"slug": "gpt-6-astra", "minimal_client_version": "0.170.0",
         "base_instructions": "You are Astra, the backend's own base prompt."}
PLAIN = [{"slug": "gpt-5.5"}, {"slug": "gpt-5.4-mini"}, {"slug": "gpt-5-codex"}]
KEY = {"Authorization": "Bearer test-client-key-0123456789"}


def catalog_gateway(make_client, upstream, catalog=PLAIN + [GATED], **settings):
    upstream.configure(catalog=catalog)
    gw = make_client(upstream_catalog_refresh_seconds=3600, **settings)
    catalogs = gw.app.extensions["gateway"].executor.catalogs
    catalogs.refresh()
    return gw, catalogs


def listed(gw) -> list[str]:
    return [m["id"] for m in gw.client.get("/v1/models", headers=KEY).get_json()["data"]]


def test_a_model_only_the_backend_lists_is_listed_and_served_in_every_dialect(
        make_client, upstream):
    gw, catalogs = catalog_gateway(make_client, upstream)
    assert catalogs.source == "backend"
    assert "gpt-6-astra" in listed(gw) and "gpt-5.5" in listed(gw)
    for path, body in [
        ("/v1/responses", {"model": "gpt-6-astra", "input": "hi"}),
        ("/v1/chat/completions", {"model": "gpt-6-astra",
                                  "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/messages", {"model": "gpt-6-astra", "max_tokens": 100,
                          "messages": [{"role": "user", "content": "hi"}]}),
    ]:
        resp = gw.post(path, body)
        assert resp.status_code == 200, (path, resp.get_json())
        sent = upstream.requests[-1]
        assert sent["body"]["model"] == "gpt-6-astra"
        # The gated model is accepted because the gateway's identity is current.
        assert sent["headers"]["User-Agent"].startswith("codex_cli_rs/0.171.0")
    fetch = upstream.catalog_fetches[-1]
    assert fetch["client_version"] == "0.171.0"


def test_codex_cli_gets_the_backends_own_entries_by_client_version(make_client, upstream):
    gw, _ = catalog_gateway(make_client, upstream)
    new = gw.client.get("/v1/models?client_version=0.171.0", headers=KEY).get_json()["models"]
    astra = next(m for m in new if m["slug"] == "gpt-6-astra")
    assert astra["base_instructions"] == GATED["base_instructions"]
    old = gw.client.get("/v1/models?client_version=0.169.0", headers=KEY).get_json()["models"]
    assert "gpt-6-astra" not in [m["slug"] for m in old]
    assert all(m.get("base_instructions") for m in new)  # nothing empty


def test_a_model_the_backend_dropped_is_gone_after_the_next_refresh(make_client, upstream):
    gw, catalogs = catalog_gateway(make_client, upstream)
    assert gw.post("/v1/responses", {"model": "gpt-6-astra", "input": "hi"}).status_code == 200
    upstream.configure(catalog=PLAIN)
    catalogs.refresh()
    assert "gpt-6-astra" not in listed(gw)
    before = len(upstream.requests)
    resp = gw.post("/v1/responses", {"model": "gpt-6-astra", "input": "hi"})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "model_not_found"
    assert len(upstream.requests) == before  # refused before any upstream request


def test_an_unchanged_catalog_is_refetched_with_its_etag(make_client, upstream):
    _, catalogs = catalog_gateway(make_client, upstream)
    catalogs.refresh()
    first, second = upstream.catalog_fetches[-2:]
    assert first["status"] == 200 and second["status"] == 304
    assert second["if_none_match"] == first["etag"]


def test_an_answers_models_etag_triggers_a_refetch(make_client, upstream):
    gw, catalogs = catalog_gateway(make_client, upstream, catalog=PLAIN)
    fetches = len(upstream.catalog_fetches)
    upstream.configure(catalog=PLAIN + [GATED])  # the backend's etag changes
    gw.post("/v1/responses", {"model": "gpt-5.5", "input": "hi"})
    import time
    deadline = time.time() + 5
    while "gpt-6-astra" not in listed(gw) and time.time() < deadline:
        catalogs._loaded = 0.0
        time.sleep(0.05)
    assert "gpt-6-astra" in listed(gw) and len(upstream.catalog_fetches) > fetches


def test_catalog_unreachable_at_start_serves_with_the_table_and_says_so(make_client, upstream):
    upstream.configure(catalog=PLAIN)
    gw = make_client(upstream_catalog_refresh_seconds=3600)
    catalogs = gw.app.extensions["gateway"].executor.catalogs

    def down(url, headers, timeout):
        raise ConnectionError("refused")

    catalogs._get = down
    catalogs.refresh()
    health = gw.client.get("/healthz").get_json()
    assert health["catalog"]["source"] == "table" and "unreachable" in health["catalog"]["error"]
    assert gw.post("/v1/responses", {"model": "gpt-5.5", "input": "hi"}).status_code == 200


def test_merge_keeps_the_table_for_kinds_nobody_fetched():
    static = load_catalog({})
    fetched = {"accounts": {"a": {"kind": "codex", "models": [{"slug": "gpt-9"}]}}}
    merged = merge(static, fetched)
    slugs = [m.slug for m in merged.models]
    assert slugs[0] == "gpt-9"
    for m in merged.models[1:]:
        assert "codex" not in m.kinds  # the table speaks only for the API kind now
    assert merged.aliases == static.aliases


@pytest.mark.parametrize("entry, slug, efforts", [
    ({"slug": "x", "supported_reasoning_levels": [{"effort": "low"}, {"effort": "high"}]},
     "x", ("low", "high")),
    ({"id": "gpt-4.1", "object": "model"}, "gpt-4.1", ()),
    ({"display_name": "no slug"}, None, None),
])
def test_model_of(entry, slug, efforts):
    m = model_of(entry, "codex")
    assert (m.slug if m else None) == slug
    if m:
        assert m.efforts == efforts


def test_accounts_list_says_which_catalog_is_in_use(make_client, upstream, capsys):
    from gateway.accounts import cli as accounts_cli
    gw, _ = catalog_gateway(make_client, upstream)
    args = type("Args", (), {"json": False})()
    accounts_cli.cmd_list(gw.config, args)
    assert "Model catalog: the backend's (4 models from 1 accounts" in capsys.readouterr().out
