"""The model catalog: resolution (aliases, globs, effort suffixes), both list
shapes, config validation, and agreement with the continuity model family."""
from __future__ import annotations

import json
import tomllib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway import continuity
from gateway import models as M
from gateway.errors import GatewayError
from gateway.models import Catalog, CatalogConfigError, Model, load_catalog, resolve
from tests.support import FIXTURES, ROOT

CAT = load_catalog({})
SUFFIX_FORMS = ("-{}", "({})")


def res(name, catalog=CAT, **kw):
    return resolve(name, catalog, **kw)


# -- resolution: the built-in catalog -------------------------------------------
# (asked, keyword arguments, upstream model, effective effort, alias rule, via)
BUILTIN_ROWS = [
    ("gpt-5.5", {}, "gpt-5.5", None, None, "catalog"),
    ("  gpt-5.5 ", {}, "gpt-5.5", None, None, "catalog"),
    ("GPT-5.5", {}, "gpt-5.5", None, None, "catalog"),
    ("gpt-5.5-high", {}, "gpt-5.5", "high", None, "catalog"),
    ("gpt-5.5(high)", {}, "gpt-5.5", "high", None, "catalog"),
    ("gpt-5.5( xhigh )", {}, "gpt-5.5", "xhigh", None, "catalog"),
    ("GPT-5.5-HIGH", {}, "gpt-5.5", "high", None, "catalog"),
    ("gpt-5.5-none", {}, "gpt-5.5", "none", None, "catalog"),
    ("gpt-5-minimal", {}, "gpt-5", "minimal", None, "catalog"),
    ("gpt-5.6-sol-max", {}, "gpt-5.6-sol", "max", None, "catalog"),
    # an explicit effort wins over the suffix (OmniRoute #3265: -medium beat xhigh)
    ("gpt-5.5-medium", {"explicit_effort": "xhigh"}, "gpt-5.5", "xhigh", None, "catalog"),
    ("gpt-5.5(low)", {"explicit_effort": " High "}, "gpt-5.5", "high", None, "catalog"),
    ("gpt-5.5", {"explicit_effort": "low"}, "gpt-5.5", "low", None, "catalog"),
    ("gpt-5.5-high", {"explicit_effort": "  "}, "gpt-5.5", "high", None, "catalog"),
    # an exact name beats suffix parsing; "mini" is not "minimal"
    ("gpt-5.1-codex-max", {}, "gpt-5.1-codex-max", None, None, "catalog"),
    ("gpt-5.1-codex-max-high", {}, "gpt-5.1-codex-max", "high", None, "catalog"),
    ("gpt-5.1-codex-max-max", {}, "gpt-5.1-codex-max", "max", None, "catalog"),
    ("gpt-5.4-mini", {}, "gpt-5.4-mini", None, None, "catalog"),
    ("gpt-5.4-mini-minimal", {}, "gpt-5.4-mini", "minimal", None, "catalog"),
    # Claude Code's own names, by tier
    ("claude-opus-5-5", {}, "gpt-5.5", None, "claude-*opus*", "alias"),
    ("claude-opus-4-1-20250805", {}, "gpt-5.5", None, "claude-*opus*", "alias"),
    ("claude-sonnet-4-5-20250929", {}, "gpt-5.5", None, "claude-*sonnet*", "alias"),
    ("claude-sonnet-5", {}, "gpt-5.5", None, "claude-*sonnet*", "alias"),
    ("claude-haiku-4-5", {}, "gpt-5.4-mini", None, "claude-*haiku*", "alias"),
    ("claude-3-5-haiku-latest", {}, "gpt-5.4-mini", None, "claude-*haiku*", "alias"),
    ("Claude-Haiku-4-5", {}, "gpt-5.4-mini", None, "claude-*haiku*", "alias"),
    ("claude-next-1", {}, "gpt-5.5", None, "claude-*", "alias"),
    ("claude-opus-5-5-high", {}, "gpt-5.5", "high", "claude-*opus*", "alias"),
    ("claude-opus-5-5(low)", {"explicit_effort": "medium"}, "gpt-5.5", "medium",
     "claude-*opus*", "alias"),
    # names only an account's --models list knows
    ("ft:gpt-4.1:acme", {"served": ["ft:gpt-4.1:acme"]}, "ft:gpt-4.1:acme", None, None,
     "served"),
    ("My-Model-high", {"served": [" my-model "]}, "my-model", "high", None, "served"),
    ("gpt-5.5", {"served": ["gpt-5.5"]}, "gpt-5.5", None, None, "catalog"),
]


@pytest.mark.parametrize("asked,kw,model,effort,alias,via", BUILTIN_ROWS)
def test_resolve_builtin(asked, kw, model, effort, alias, via):
    r = res(asked, **kw)
    assert (r.model, r.effort, r.alias, r.via) == (model, effort, alias, via)
    assert r.asked == asked.strip()


# -- resolution: configured aliases, tiers and allow globs -----------------------
CONFIGURED = load_catalog({
    "aliases": {"fast": "gpt-5.4-mini-low", "deep": "gpt-5.5(xhigh)",
                "claude-*haiku*": "gpt-5.2", "team-?": "gpt-5.3-codex",
                "legacy-*": "gpt-5-codex"},
    "allow": ["gpt-7*"],
    "main_model": "gpt-5.4",
})

CONFIG_ROWS = [
    ("fast", {}, "gpt-5.4-mini", "low", "fast", "alias"),
    ("FAST", {}, "gpt-5.4-mini", "low", "fast", "alias"),
    ("fast-high", {}, "gpt-5.4-mini", "high", "fast", "alias"),    # the name's suffix wins
    ("fast", {"explicit_effort": "medium"}, "gpt-5.4-mini", "medium", "fast", "alias"),
    ("deep", {}, "gpt-5.5", "xhigh", "deep", "alias"),
    ("claude-haiku-4-5", {}, "gpt-5.2", None, "claude-*haiku*", "alias"),  # user rule first
    ("claude-opus-5-5", {}, "gpt-5.4", None, "claude-*opus*", "alias"),    # main_model
    ("team-a", {}, "gpt-5.3-codex", None, "team-?", "alias"),
    ("team-a-low", {}, "gpt-5.3-codex", "low", "team-?", "alias"),
    ("legacy-high", {}, "gpt-5-codex", None, "legacy-*", "alias"),  # glob on the full name
    ("gpt-7-preview", {}, "gpt-7-preview", None, None, "allow"),
    ("gpt-7-preview-high", {}, "gpt-7-preview", "high", None, "allow"),
    ("gpt-5.5", {}, "gpt-5.5", None, None, "catalog"),
]


@pytest.mark.parametrize("asked,kw,model,effort,alias,via", CONFIG_ROWS)
def test_resolve_configured(asked, kw, model, effort, alias, via):
    r = res(asked, CONFIGURED, **kw)
    assert (r.model, r.effort, r.alias, r.via) == (model, effort, alias, via)


def test_suffix_effort_is_kept_for_the_log_even_when_explicit_wins():
    r = res("gpt-5.5-medium", explicit_effort="xhigh")
    assert r.suffix_effort == "medium" and r.effort == "xhigh" and not r.apply_effort
    assert res("gpt-5.5-medium").apply_effort
    assert not res("gpt-5.5").apply_effort


# -- unknown and malformed names ----------------------------------------------------
@pytest.mark.parametrize("asked,served", [
    ("gpt-9", None), ("nope-high", None), ("gpt-5.5-turbo", None), ("mystery", ["other"]),
    ("gpt-5.5x", None), ("-high", None), ("(high)", None),
])
def test_unknown_model_is_404_naming_the_available_models(asked, served):
    with pytest.raises(GatewayError) as exc:
        res(asked, served=served)
    err = exc.value
    assert err.status == 404 and err.code == "model_not_found" and err.param == "model"
    body = err.body()["error"]
    assert body["type"] == "invalid_request_error"
    assert f"'{asked}'" in body["message"]
    for slug in ("gpt-5.5", "gpt-5.4", "gpt-5-codex", "gpt-5.4-mini"):
        assert slug in body["message"]
    if served:
        assert "other" in body["message"]


def test_unknown_model_message_is_bounded():
    big = Catalog(tuple(Model(f"m-{i}", f"m-{i}", {"codex": 1000}) for i in range(200)))
    with pytest.raises(GatewayError) as exc:
        res("x" * 5000, big)
    message = exc.value.message
    assert len(message) < 2000 and "and 140 more" in message


@pytest.mark.parametrize("asked", ["gpt-5.5(turbo)", "gpt-5.5(8192)", "claude-opus-5-5()"])
def test_unknown_effort_in_parentheses_is_400(asked):
    with pytest.raises(GatewayError) as exc:
        res(asked)
    assert exc.value.status == 400 and exc.value.code == "invalid_effort"
    assert exc.value.param == "model" and "xhigh" in exc.value.message


@pytest.mark.parametrize("asked", ["", "   ", None, 5, ["gpt-5.5"]])
def test_missing_or_non_string_model_is_400(asked):
    with pytest.raises(GatewayError) as exc:
        res(asked)
    assert exc.value.status == 400 and exc.value.param == "model"


# -- properties -------------------------------------------------------------------
slugs = st.sampled_from([m.slug for m in CAT.models])
efforts = st.sampled_from(M.EFFORTS)
forms = st.sampled_from(SUFFIX_FORMS)


@given(slugs, efforts, forms)
def test_any_slug_with_any_suffix_resolves_to_the_slug(slug, effort, form):
    name = slug + form.format(effort)
    assume(CAT.get(name) is None)  # gpt-5.1-codex + "-max" is a model of its own
    r = res(name)
    assert r.model == slug and r.effort == effort and r.via == "catalog"
    # The continuity family ignores the suffix too, except for a slug that itself
    # ends like one (gpt-5.1-codex-max): hence the executor computes continuity
    # on the resolved name, where every variant of a model is the same string.
    if not M.MODEL_SUFFIX.search(slug):
        assert continuity.model_family(name) == continuity.model_family(slug)


@given(slugs, efforts, forms, efforts)
def test_an_explicit_effort_always_wins(slug, effort, form, explicit):
    name = slug + form.format(effort)
    assume(CAT.get(name) is None)
    r = res(name, explicit_effort=explicit)
    assert r.model == slug and r.effort == explicit


names = st.from_regex(r"[a-z][a-z0-9.]{0,8}(-[a-z0-9]{1,6}){0,2}", fullmatch=True)


@given(st.lists(names, min_size=1, max_size=6, unique=True), efforts, forms, st.data())
def test_property_holds_for_any_catalog(slug_list, effort, form, data):
    catalog = Catalog(tuple(Model(s, s, {"codex": 1000}) for s in slug_list))
    slug = data.draw(st.sampled_from(slug_list))
    name = slug + form.format(effort)
    assume(catalog.get(name) is None)
    r = res(name, catalog)
    assert r.model == slug and r.effort == effort


def test_continuity_uses_the_same_suffix_definition():
    assert continuity._MODEL_SUFFIX is M.MODEL_SUFFIX
    assert {m.group(2) for m in map(M.MODEL_SUFFIX.search,
                                    (f"x-{e}" for e in M.EFFORTS))} == set(M.EFFORTS)


# -- apply() on a normalised Responses body -----------------------------------------
@pytest.mark.parametrize("body,asked,want_model,want_reasoning", [
    ({"model": "gpt-5.5-high"}, "gpt-5.5-high", "gpt-5.5", {"effort": "high"}),
    ({"model": "x", "reasoning": {"summary": "auto"}}, "gpt-5.5(low)", "gpt-5.5",
     {"summary": "auto", "effort": "low"}),
    ({"model": "x", "reasoning": None}, "fast", "gpt-5.4-mini", {"effort": "low"}),
    ({"model": "x", "reasoning": {"effort": "xhigh"}}, "gpt-5.5-medium", "gpt-5.5",
     {"effort": "xhigh"}),
    ({"model": "x", "reasoning": {"summary": "auto"}}, "claude-opus-5-5", "gpt-5.4",
     {"summary": "auto"}),
])
def test_apply(body, asked, want_model, want_reasoning):
    r = resolve(asked, CONFIGURED, explicit_effort=M.request_effort(body))
    M.apply(body, r)
    assert body["model"] == want_model and body.get("reasoning") == want_reasoning


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
        assert res(d["id"]).model in plain
    listed = load_catalog({"list_suffixed": True})
    assert {d["id"] for d in M.openai_list(listed)["data"]} == set(ids)
    assert len(M.openai_list(listed, with_suffixes=False)["data"]) == len(plain)


def test_hidden_models_resolve_but_are_not_listed():
    cat = load_catalog({"models": [{"slug": "gpt-5.2", "hidden": True}]})
    assert res("gpt-5.2", cat).model == "gpt-5.2"
    assert "gpt-5.2" not in {d["id"] for d in M.openai_list(cat)["data"]}
    with pytest.raises(GatewayError) as exc:
        res("nope", cat)
    assert "gpt-5.2," not in exc.value.message


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


# -- configuration ------------------------------------------------------------------
def test_overrides_merge_into_the_builtin_entry():
    cat = load_catalog({"models": [
        {"slug": "gpt-5.5", "context_window": 200_000},
        {"slug": "gpt-5.4", "context_window": {"codex": 250_000}, "upstreams": ["codex"]},
        {"slug": "brand-new", "efforts": ["low", "ultra"], "default_effort": "ultra"},
    ], "remove": ["gpt-4.1"]})
    m = cat.get("gpt-5.5")
    assert m.context == {"codex": 200_000, "openai": 200_000}
    assert m.efforts == CAT.get("gpt-5.5").efforts and m.display_name == "GPT-5.5"
    assert cat.get("gpt-5.4").context == {"codex": 250_000}
    new = cat.get("brand-new")
    assert new.kinds == {"codex"} and new.context_window() is None
    assert new.default_effort == "ultra" and cat.slugs()[-1] == "brand-new"
    assert cat.get("gpt-4.1") is None
    assert cat.kinds_for("gpt-5.4") == {"codex"} and cat.kinds_for("other") == set(M.KINDS)


def test_builtin_false_starts_empty_and_tiers_follow_main_model():
    cat = load_catalog({"builtin": False, "models": [{"slug": "local-1"}]})
    assert cat.slugs() == ["local-1"]
    with pytest.raises(GatewayError):
        res("claude-opus-5-5", cat)       # no main model, so no Claude aliases
    cat = load_catalog({"builtin": False, "models": [{"slug": "local-1"}],
                               "main_model": "local-1-high"})
    r = res("claude-haiku-4-5", cat)
    assert (r.model, r.effort) == ("local-1", "high")


@pytest.mark.parametrize("section,needle", [
    ({"bogus": 1}, "bogus"),
    ({"aliases": {"x": "gpt-99"}}, "gpt-99"),
    ({"aliases": {"x": "gpt-5.5-turbo"}}, "gpt-5.5-turbo"),
    ({"aliases": {"x": "gpt-5.5(bogus)"}}, "bogus"),
    ({"aliases": {"gpt-5": "gpt-5.5"}}, "models.remove"),
    ({"aliases": {"x": ""}}, "'x'"),
    ({"aliases": ["x"]}, "models.aliases"),
    ({"main_model": "gpt-99"}, "main_model"),
    ({"small_model": 3}, "small_model"),
    ({"models": {"slug": "x"}}, "models.models"),
    ({"models": [{"name": "x"}]}, "name"),
    ({"models": [{"slug": "a*"}]}, "slug"),
    ({"models": [{"slug": "x", "context_window": 0}]}, "context_window"),
    ({"models": [{"slug": "x", "context_window": True}]}, "context_window"),
    ({"models": [{"slug": "x", "context_window": {"azure": 5}}]}, "azure"),
    ({"models": [{"slug": "x", "upstreams": ["azure"]}]}, "upstreams"),
    ({"models": [{"slug": "x", "efforts": ["Low High"]}]}, "efforts"),
    ({"models": [{"slug": "gpt-5.5", "default_effort": "max"}]}, "default_effort"),
    ({"models": [{"slug": "x", "codex_min_version": "soon"}]}, "codex_min_version"),
    ({"models": [{"slug": "x", "codex": "no"}]}, "codex"),
    ({"models": [{"slug": "x", "hidden": "yes"}]}, "hidden"),
    ({"codex_entries": "some"}, "codex_entries"),
    ({"list_suffixed": "yes"}, "list_suffixed"),
    ({"allow": [1]}, "allow"),
])
def test_bad_config_names_the_key(section, needle):
    with pytest.raises(CatalogConfigError) as exc:
        load_catalog(section)
    assert needle in str(exc.value)


def test_lists_may_come_comma_separated_from_the_environment():
    cat = load_catalog({"allow": "gpt-7*, o9*", "remove": "gpt-4.1"})
    assert cat.allow == ("gpt-7*", "o9*") and cat.get("gpt-4.1") is None


def test_the_documented_example_is_valid_toml_and_config():
    doc = (ROOT / "docs" / "models.md").read_text()
    start = doc.index("```toml\n[models]\n") + len("```toml\n")
    block = doc[start:doc.index("```", start)]
    cat = load_catalog(tomllib.loads(block)["models"])
    assert res("fast", cat).effort == "low" and res("claude-x", cat).model == "gpt-5.5"
    assert cat.get("gpt-5.6-sol").efforts[-1] == "max"


def test_builtin_models_keep_their_windows_and_efforts():
    """builtin.toml goes through the configured path: every built-in model
    keeps its context windows, efforts and default effort."""
    by = {m.slug: m for m in CAT.models}
    assert by["gpt-5.5"].context == {"codex": 272_000, "openai": 1_050_000}
    assert by["gpt-4.1"].efforts == () and by["gpt-4.1"].kinds == {"openai"}
    assert by["gpt-5.3-codex-spark"].context_window() == 128_000
    assert CAT.aliases[-1] == ("gemini-*", "gpt-5.5")


# -- real clients' names (trimmed from the shared captures) ---------------------------
SEEN = json.loads((FIXTURES / "models-seen.json").read_text())


@pytest.mark.parametrize("seen", SEEN, ids=[f"{s['capture']}:{s['model']}" for s in SEEN])
def test_every_model_a_real_client_sent_resolves(seen):
    r = res(seen["model"], explicit_effort=seen["effort"])
    assert r.model in {m.slug for m in CAT.models}
    assert r.effort == seen["effort"]
    if seen["model"].startswith("claude-"):
        assert r.model == "gpt-5.5" and r.alias == "claude-*opus*"
    else:
        assert r.model == seen["model"] and r.alias is None
