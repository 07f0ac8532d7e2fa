"""The [models] table: overrides of the built-in catalog, tiers, strict errors, the
documented example, the built-in entries' windows and efforts."""
from __future__ import annotations

import tomllib

import pytest

from gateway import models as M
from gateway.errors import GatewayError
from gateway.models import CatalogConfigError, load_catalog, resolve
from tests.support import ROOT

CAT = load_catalog({})


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
        resolve("claude-opus-5-5", cat)       # no main model, so no Claude aliases
    cat = load_catalog({"builtin": False, "models": [{"slug": "local-1"}],
                               "main_model": "local-1-high"})
    r = resolve("claude-haiku-4-5", cat)
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
    assert resolve("fast", cat).effort == "low" and resolve("claude-x", cat).model == "gpt-5.5"
    assert cat.get("gpt-5.6-sol").efforts[-1] == "max"


def test_builtin_models_keep_their_windows_and_efforts():
    """builtin.toml goes through the configured path: every built-in model
    keeps its context windows, efforts and default effort."""
    by = {m.slug: m for m in CAT.models}
    assert by["gpt-5.5"].context == {"codex": 272_000, "openai": 1_050_000}
    assert by["gpt-4.1"].efforts == () and by["gpt-4.1"].kinds == {"openai"}
    assert by["gpt-5.3-codex-spark"].context_window() == 128_000
    assert CAT.aliases[-1] == ("gemini-*", "gpt-5.5")
