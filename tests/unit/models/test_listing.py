"""Both /v1/models shapes: the OpenAI list and Codex CLI's list (required fields,
versions, kinds, ETag)."""
from __future__ import annotations

import json

import pytest

from gateway import models as M
from gateway.models import load_catalog, resolve

CAT = load_catalog({})


# -- GET /v1/models, OpenAI shape -----------------------------------------------------
def test_openai_list_shape():
    out = M.openai_list(CAT)
    assert out["object"] == "list"
    ids = [d["id"] for d in out["data"]]
    assert len(ids) == len(set(ids)) and ids[0] == "gpt-5.5"
    for d in out["data"]:
        assert set(d) == {"id", "object", "created", "owned_by", "context_window"}
        assert d["object"] == "model" and d["owned_by"] == "openai"
        assert isinstance(d["created"], int) and d["context_window"] > 0
    json.dumps(out)


@pytest.mark.parametrize("kinds,slug,window", [
    (["codex"], "gpt-5.5", 272_000),              # the backend refuses >= 272k input
    (["openai"], "gpt-5.5", 1_050_000),
    (["codex", "openai"], "gpt-5.5", 272_000),    # the smallest a request may meet
    (None, "gpt-5.3-codex-spark", 128_000),
])
def test_openai_list_context_window_follows_the_account_kinds(kinds, slug, window):
    data = {d["id"]: d for d in M.openai_list(CAT, kinds=kinds)["data"]}
    assert data[slug]["context_window"] == window


def test_openai_list_kinds_filter_and_served_names():
    only_api = {d["id"] for d in M.openai_list(CAT, kinds=["openai"])["data"]}
    assert "gpt-5.3-codex-spark" not in only_api and "gpt-4.1" in only_api
    only_codex = {d["id"] for d in M.openai_list(CAT, kinds=["codex"])["data"]}
    assert "gpt-4.1" not in only_codex and "gpt-5.6-sol" in only_codex
    out = M.openai_list(CAT, served=["ft:acme", "GPT-5.5", "ft:acme"])["data"]
    extra = [d for d in out if d["id"] == "ft:acme"]
    assert len(extra) == 1 and "context_window" not in extra[0]
    assert sum(d["id"].lower() == "gpt-5.5" for d in out) == 1


def test_openai_list_suffixed_variants():
    plain = {d["id"] for d in M.openai_list(CAT)["data"]}
    data = M.openai_list(CAT, with_suffixes=True)["data"]
    ids = [d["id"] for d in data]
    assert len(ids) == len(set(ids))
    assert {"gpt-5.5-high", "gpt-5.5-none", "gpt-5.6-sol-max", "gpt-5-minimal"} <= set(ids)
    assert "gpt-5.5-max" not in ids and "gpt-5.5-minimal" not in ids  # not its efforts
    for d in data:
        assert resolve(d["id"], CAT).model in plain
    listed = load_catalog({"list_suffixed": True})
    assert {d["id"] for d in M.openai_list(listed)["data"]} == set(ids)
    assert len(M.openai_list(listed, with_suffixes=False)["data"]) == len(plain)


# -- GET /models?client_version=, Codex CLI's shape -----------------------------------
# ModelInfo fields without a serde default in the Codex CLI schemas (an absent
# one fails the whole list and Codex refetches); see docs/models.md.
CODEX_REQUIRED = {
    "slug", "display_name", "description", "supported_reasoning_levels", "shell_type",
    "visibility", "supported_in_api", "priority", "availability_nux", "upgrade",
    "base_instructions", "supports_reasoning_summaries", "support_verbosity",
    "default_verbosity", "apply_patch_tool_type", "truncation_policy",
    "supports_parallel_tool_calls", "experimental_supported_tools",
}
INSTRUCTED = {"slug": "gpt-5.4", "codex_instructions": "You are a careful coding agent."}


def test_codex_list_by_default_leaves_codex_its_own_metadata():
    assert M.codex_list(CAT, "0.171.0") == {"models": []}
    assert M.codex_list(load_catalog({"codex_entries": "none",
                                            "models": [INSTRUCTED]}), "0.171.0") == \
        {"models": []}


def test_codex_list_entries_have_every_required_field():
    cat = load_catalog({"codex_entries": "all"})
    models = M.codex_list(cat, "0.171.0")["models"]
    slugs = [e["slug"] for e in models]
    assert "gpt-5.4" in slugs and "gpt-5-codex" in slugs
    assert not set(slugs) & set(CAT.codex_bundled)      # Codex ships better metadata
    assert len({e["priority"] for e in models}) == len(models)
    for e in models:
        assert CODEX_REQUIRED <= set(e), CODEX_REQUIRED - set(e)
        levels = [lv["effort"] for lv in e["supported_reasoning_levels"]]
        assert set(levels) <= set(CAT.codex_efforts)
        assert all(lv["description"] for lv in e["supported_reasoning_levels"])
        assert e.get("default_reasoning_level", levels[0] if levels else None) in levels + [None]
        assert e["truncation_policy"]["mode"] in ("bytes", "tokens")
        assert e["visibility"] == "list" and e["shell_type"] == "shell_command"
        assert "model_messages" not in e and e["base_instructions"] == ""
    by = {e["slug"]: e for e in models}
    assert by["gpt-5.4"]["context_window"] == 272_000
    assert [lv["effort"] for lv in by["gpt-5.6-sol"]["supported_reasoning_levels"]] == \
        ["low", "medium", "high", "xhigh"]   # "max" is not safe for every client
    json.dumps(models)


def test_codex_list_describes_instructed_models_even_when_bundled():
    cat = load_catalog({"models": [
        INSTRUCTED, {"slug": "gpt-5.5", "codex_instructions": "Be terse.",
                     "codex": {"supports_parallel_tool_calls": False}}]})
    by = {e["slug"]: e for e in M.codex_list(cat, "0.171.0")["models"]}
    assert set(by) == {"gpt-5.4", "gpt-5.5"}
    assert by["gpt-5.4"]["base_instructions"] == INSTRUCTED["codex_instructions"]
    assert by["gpt-5.4"]["model_messages"]["instructions_template"] == \
        INSTRUCTED["codex_instructions"]
    assert by["gpt-5.5"]["supports_parallel_tool_calls"] is False


def test_codex_list_passes_the_upstream_list_through():
    upstream = [{"slug": "gpt-5.4", "display_name": "gpt-5.4", "base_instructions": "U",
                 "x_unknown": 1}, {"slug": "gpt-5.9", "display_name": "n"}, {"no": "slug"}]
    cat = load_catalog({"codex_entries": "all"})
    models = M.codex_list(cat, "0.171.0", upstream=upstream)["models"]
    assert models[0] == upstream[0] and models[1] == upstream[1]
    assert [e["slug"] for e in models].count("gpt-5.4") == 1
    assert all(e.get("slug") for e in models)


@pytest.mark.parametrize("version,listed", [
    ("0.171.0", True), ("0.172.3-alpha.1", True), ("0.169.0", False),
    (None, True), ("", True), ("garbage", True),
])
def test_codex_list_respects_min_client_version(version, listed):
    cat = load_catalog({"models": [{**INSTRUCTED, "codex_min_version": "0.171.0"}]})
    slugs = [e["slug"] for e in M.codex_list(cat, version)["models"]]
    assert ("gpt-5.4" in slugs) is listed


def test_codex_list_kinds_filter_and_etag():
    cat = load_catalog({"codex_entries": "all"})
    api_only = M.codex_list(cat, "0.171.0", kinds=["openai"])["models"]
    assert "gpt-5.3-codex-spark" not in {e["slug"] for e in api_only}
    a, b = M.codex_list(cat, "0.171.0"), M.codex_list(cat, "0.171.0")
    assert M.codex_etag(a) == M.codex_etag(b) and M.codex_etag(a).startswith('"')
    assert M.codex_etag(a) != M.codex_etag({"models": []})
