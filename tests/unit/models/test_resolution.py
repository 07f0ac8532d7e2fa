"""Model resolution: aliases, globs, effort suffixes, unknown names, apply(), agreement with
the continuity model family, and every name a real client sent."""
from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway import continuity
from gateway import models as M
from gateway.errors import GatewayError
from gateway.models import Catalog, Model, load_catalog, resolve
from tests.support import FIXTURES

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


def test_hidden_models_resolve_but_are_not_listed():
    cat = load_catalog({"models": [{"slug": "gpt-5.2", "hidden": True}]})
    assert res("gpt-5.2", cat).model == "gpt-5.2"
    assert "gpt-5.2" not in {d["id"] for d in M.openai_list(cat)["data"]}
    with pytest.raises(GatewayError) as exc:
        res("nope", cat)
    assert "gpt-5.2," not in exc.value.message


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
