"""gateway.models.table
~~~~~~~~~~~~~~~~~~~~~
The ``[models]`` configuration table → a :class:`~.catalog.Catalog`.

The built-in catalog is itself such a table (``builtin.toml`` beside this
file) and goes through the same checks; the configured table is laid over it
(:func:`load_catalog`). Every error names the key (:class:`CatalogConfigError`);
config.py turns it into a start-up error. The keys: docs/models.md.
"""
from __future__ import annotations

import fnmatch
import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources

from .catalog import EFFORTS, GLOB_CHARS, KINDS, Catalog, Model
from .listing import parse_version
from .resolution import split_suffix

CODEX_ENTRIES = ("instructed", "all", "none")
_SECTION_KEYS = {"builtin", "remove", "main_model", "small_model", "list_suffixed", "allow",
                 "aliases", "models", "codex_entries", "codex_bundled", "codex_efforts"}
_BUILTIN_KEYS = _SECTION_KEYS - {"builtin", "remove", "aliases"} | {"tiers"}
_MODEL_KEYS = {"slug", "display_name", "context_window", "efforts", "default_effort",
               "upstreams", "description", "hidden", "created", "codex_instructions",
               "codex_min_version", "codex"}
_EFFORT_WORD = re.compile(r"^[a-z][a-z0-9_]*$")


class CatalogConfigError(ValueError):
    """A ``[models]`` setting that cannot work; the message names the key."""


def load_catalog(section: Mapping | None) -> Catalog:
    """The built-in table with the configured ``[models]`` table laid over it."""
    sec = dict(section or {})
    _keys(sec, _SECTION_KEYS, "models")
    base, builtin_models = _builtin()
    remove = {s.lower() for s in _strings(sec.get("remove", []), "models.remove")}
    models = {}
    if _bool(sec.get("builtin", True), "models.builtin"):
        models = {m.slug.lower(): m for m in builtin_models if m.slug.lower() not in remove}
    models = _models(sec.get("models", []), "models.models", models)
    lookup = Catalog(tuple(models.values()))

    allow = tuple(p.lower() for p in _strings(sec.get("allow", base["allow"]), "models.allow"))
    rules = _aliases(sec.get("aliases", {}), lookup, allow)
    # The Claude and Gemini tiers follow main_model/small_model; with no main model
    # in the catalog (builtin = false and none set) there are no tier aliases.
    main = _tier(sec, "main_model", base["main_model"], lookup, allow)
    small = _tier(sec, "small_model", base["small_model"], lookup, allow) or main
    if main:
        target = {"main": main, "small": small}
        rules += [(pattern, target[tier]) for pattern, tier in base["tiers"].items()]

    entries_mode = sec.get("codex_entries", base["codex_entries"])
    if entries_mode not in CODEX_ENTRIES:
        raise CatalogConfigError(f"models.codex_entries must be one of {list(CODEX_ENTRIES)}")
    return Catalog(
        lookup.models, aliases=tuple(rules), allow=allow,
        list_suffixed=_bool(sec.get("list_suffixed", base["list_suffixed"]),
                            "models.list_suffixed"),
        codex_entries=entries_mode,
        codex_bundled=frozenset(s.lower() for s in _strings(
            sec.get("codex_bundled", base["codex_bundled"]), "models.codex_bundled")),
        codex_efforts=tuple(_strings(sec.get("codex_efforts", base["codex_efforts"]),
                                     "models.codex_efforts")))


@functools.cache
def _builtin() -> tuple[dict, tuple[Model, ...]]:
    """``builtin.toml``: its settings, and its models checked like configured ones."""
    table = tomllib.loads(resources.files(__package__).joinpath("builtin.toml").read_text())
    _keys(table, _BUILTIN_KEYS, "builtin.toml")
    models = _models(table.pop("models"), "builtin.toml models", {})
    return table, tuple(models.values())


def _models(entries, where: str, models: dict[str, Model]) -> dict[str, Model]:
    if not isinstance(entries, list):
        raise CatalogConfigError(f"{where} must be a list of tables")
    models = dict(models)
    for i, raw in enumerate(entries):
        m = _model(raw, f"{where}[{i}]", models)
        models[m.slug.lower()] = m
    return models


def _aliases(aliases, lookup: Catalog, allow: tuple[str, ...]) -> list[tuple[str, str]]:
    if not isinstance(aliases, Mapping):
        raise CatalogConfigError("models.aliases must be a table of name = target")
    rules = []
    for pattern, target in aliases.items():
        if not isinstance(target, str) or not target.strip() or not str(pattern).strip():
            raise CatalogConfigError(f"models.aliases: '{pattern}' needs a model name as target")
        key = str(pattern).strip().lower()
        if lookup.get(key) is not None:
            raise CatalogConfigError(
                f"models.aliases '{pattern}' is a catalog model, so the alias never applies; "
                "list it in models.remove to redirect it")
        _check_target(target, lookup, allow, f"models.aliases '{pattern}'")
        rules.append((key, target.strip().lower()))
    return rules


def _model(raw, where: str, existing: dict[str, Model]) -> Model:
    if not isinstance(raw, Mapping):
        raise CatalogConfigError(f"{where} must be a table")
    _keys(raw, _MODEL_KEYS, where)
    slug = raw.get("slug")
    if not isinstance(slug, str) or not slug.strip() or GLOB_CHARS & set(slug):
        raise CatalogConfigError(f"{where}.slug must be a model name")
    # An entry for a known slug overrides only the fields it gives; a new
    # slug is served by the Codex backend unless `upstreams` says otherwise.
    base = existing.get(slug.strip().lower()) or Model(slug.strip(), slug.strip(), {"codex": 0})
    changes: dict = {}
    for key in ("display_name", "description", "codex_instructions"):
        if key in raw:
            changes[key] = _text(raw[key], f"{where}.{key}")
    if "hidden" in raw:
        changes["hidden"] = _bool(raw["hidden"], f"{where}.hidden")
    if "created" in raw:
        changes["created"] = _int(raw["created"], f"{where}.created", minimum=0)
    if "efforts" in raw:
        efforts = tuple(e.lower() for e in _strings(raw["efforts"], f"{where}.efforts"))
        bad = [e for e in efforts if not _EFFORT_WORD.match(e)]
        if bad:
            raise CatalogConfigError(f"{where}.efforts: not an effort name: {bad}")
        changes["efforts"] = efforts
    changes["context"] = _context(raw.get("context_window"), raw.get("upstreams"), base, where)
    efforts = changes.get("efforts", base.efforts)
    default = base.default_effort
    if "default_effort" in raw:
        default = _text(raw["default_effort"], f"{where}.default_effort").lower() or None
        if default and efforts and default not in efforts:
            raise CatalogConfigError(
                f"{where}.default_effort '{default}' is not one of its efforts {list(efforts)}")
    changes["default_effort"] = default if not efforts or default in efforts else None
    if "codex_min_version" in raw:
        text = _text(raw["codex_min_version"], f"{where}.codex_min_version")
        version = parse_version(text)
        if text and version is None:
            raise CatalogConfigError(f"{where}.codex_min_version must look like 0.171.0")
        changes["codex_min_version"] = version
    if "codex" in raw:
        if not isinstance(raw["codex"], Mapping):
            raise CatalogConfigError(f"{where}.codex must be a table of ModelInfo fields")
        changes["codex"] = dict(raw["codex"])
    return replace(base, **changes)


def _context(value, upstreams, base: Model, where: str) -> dict[str, int]:
    if upstreams is not None:
        kinds = [k.lower() for k in _strings(upstreams, f"{where}.upstreams")]
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise CatalogConfigError(f"{where}.upstreams must name some of {list(KINDS)}")
    else:
        kinds = sorted(base.kinds)
    if value is None:
        return {k: base.context.get(k, max(base.context.values(), default=0)) for k in kinds}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if k not in KINDS:
                raise CatalogConfigError(f"{where}.context_window: unknown upstream '{k}'")
            out[k] = _int(v, f"{where}.context_window.{k}", minimum=1)
        if upstreams is not None:
            out = {k: out.get(k, max(out.values())) for k in kinds}
        return out
    number = _int(value, f"{where}.context_window", minimum=1)
    return {k: number for k in kinds}


def _check_target(target: str, catalog: Catalog, allow: tuple[str, ...], where: str) -> None:
    name = target.strip().lower()
    base, effort = (name, None) if catalog.get(name) else split_suffix(name)
    if effort is not None and effort not in EFFORTS:
        raise CatalogConfigError(f"{where}: unknown effort '{effort}' in target '{target}'")
    if catalog.get(base) is None and not any(fnmatch.fnmatchcase(base, p) for p in allow):
        raise CatalogConfigError(
            f"{where}: target '{target}' is not in the catalog; add it under "
            "[[models.models]] or to models.allow")


def _tier(sec: dict, key: str, default: str, catalog: Catalog, allow) -> str | None:
    if key in sec:
        value = _text(sec[key], f"models.{key}").lower()
        _check_target(value, catalog, allow, f"models.{key}")
        return value
    return default if catalog.get(default) is not None else None


def _keys(table: Mapping, allowed: set[str], where: str) -> None:
    extra = set(table) - allowed
    if extra:
        raise CatalogConfigError(f"unknown setting(s) in {where}: {sorted(extra)}")


def _strings(value, where: str) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise CatalogConfigError(f"{where} must be a list of strings")
    return [v.strip() for v in value if v.strip()]


def _text(value, where: str) -> str:
    if not isinstance(value, str):
        raise CatalogConfigError(f"{where} must be a string")
    return value.strip()


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogConfigError(f"{where} must be true or false")
    return value


def _int(value, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CatalogConfigError(f"{where} must be an integer >= {minimum}")
    return value
