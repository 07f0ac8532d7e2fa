"""gateway.models
~~~~~~~~~~~~~~~~
One model catalog for every dialect: which names the gateway accepts, what
each becomes upstream, and how the catalog is listed to clients.

Model names are where clients trip most after parameters: new models missing,
``-high`` suffixes refused, a suffix overriding an explicit effort, context
windows reported as 1M when the Codex backend stops at ~272k. This module is
the single place that decides all of it. It is pure (no Flask, no I/O): the
executor calls :func:`resolve` before any upstream request, ``/v1/models``
calls :func:`openai_list` or :func:`codex_list`.

Resolution of a requested name, first hit wins (names compare lower-cased):

1. exact: a catalog slug, then a name some account serves (``--models``), then
   an exact alias; tried on the full name, then on the name without its effort
   suffix (``gpt-5.5-high`` → ``gpt-5.5`` + ``high``; ``gpt-5.5(high)`` too);
2. patterns: glob aliases, then ``allow`` globs; tried on the name without its
   suffix first, so ``claude-opus-5-5-high`` keeps its ``high``;
3. otherwise 404 ``model_not_found``, naming the models that exist.

An exact name always beats suffix parsing: ``gpt-5.1-codex-max`` is a model,
not ``gpt-5.1-codex`` at effort ``max``. Effort precedence: an explicit
``reasoning.effort`` in the request, then the requested name's suffix, then a
suffix inside the alias target (``fast = "gpt-5.4-mini-low"``). The gateway
never injects a default effort: a model's ``default_effort`` is metadata.

The ``[models]`` TOML table (:meth:`Catalog.from_config` takes it as a dict)::

    [models]
    builtin = true                # false: start from an empty catalog
    remove = []                   # built-in slugs to drop
    main_model = "gpt-5.5"        # target of the built-in claude-*, opus, sonnet, gemini-* aliases
    small_model = "gpt-5.4-mini"  # target of the built-in haiku and gemini-*flash* aliases
    list_suffixed = false         # /v1/models also lists <model>-<effort> variants
    allow = []                    # globs forwarded unchanged though not in the catalog
    codex_entries = "instructed"  # which models Codex CLI's catalog describes (see below)
    codex_bundled = ["gpt-5.5", "gpt-6.1-sol"]  # slugs Codex CLI ships metadata for
    codex_efforts = ["none", "minimal", "low", "medium", "high", "xhigh"]

    [models.aliases]              # exact names or globs (* ? [..]); first match wins
    "claude-*" = "gpt-5.5"
    "fast" = "gpt-5.4-mini-low"   # a target may carry an effort suffix

    [[models.models]]             # add a model, or override fields of a built-in one
    slug = "gpt-5.6-sol"
    display_name = "GPT-5.6 Sol"
    context_window = 272000       # or per upstream: {codex = 272000, openai = 1050000}
    efforts = ["low", "medium", "high", "xhigh", "max"]
    default_effort = "medium"
    upstreams = ["codex"]         # account kinds that serve it: codex, openai
    description = ""
    hidden = false                # resolvable but not listed
    codex_instructions = ""       # base prompt for Codex CLI's catalog entry
    codex_min_version = ""        # hide from Codex CLI older than this
    codex = {}                    # raw Codex ModelInfo fields, merged last

``context_window`` is the largest input the upstream accepts (what a client
needs to compact in time), not a marketing figure; listed once, it is the
smallest over the upstreams the gateway has accounts for.

Codex CLI's catalog (``GET /models?client_version=``) replaces Codex's own
bundled entry for every slug it describes, instructions included. The gateway
cannot ship Codex's base prompt, so by default (``codex_entries =
"instructed"``) it describes only models that have ``codex_instructions`` or
come from the upstream's own list (``upstream=`` below); everything else keeps
Codex's bundled or fallback metadata, which carries Codex's own prompt.
``"all"`` describes every catalog model not in ``codex_bundled`` (no "metadata
not found" warning, but no base prompt unless configured); ``"none"`` describes
none of its own: ``{"models": []}`` (which Codex accepts and caches) plus any
upstream list passed in.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .errors import GatewayError, bad_request

# Suffixes the gateway reads as a reasoning effort. continuity.model_family
# strips the same pattern, so a suffixed and a plain name share one family.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
MODEL_SUFFIX = re.compile(r"(\(.*\)|-(minimal|low|medium|high|xhigh|max|none))$")

KINDS = ("codex", "openai")
CREATED = 1767225600  # fixed, so every worker lists the same object
CODEX_ENTRIES = ("instructed", "all", "none")
# Efforts every Codex CLI version we know parses; an unknown value in an
# older client's enum fails the whole catalog (and Codex refetches it).
CODEX_SAFE_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
CODEX_BUNDLED = ("gpt-5.5", "gpt-6.1-sol")
MAIN_MODEL = "gpt-5.5"
SMALL_MODEL = "gpt-5.4-mini"

_EFFORT_TEXT = {
    "none": "No reasoning: fastest answers",
    "minimal": "Very light reasoning",
    "low": "Fast responses with lighter reasoning",
    "medium": "Balances speed and reasoning depth",
    "high": "Greater reasoning depth for complex problems",
    "xhigh": "Extra high reasoning depth",
    "max": "Maximum reasoning depth",
}
_GLOB_CHARS = set("*?[")
_EFFORT_WORD = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)\.(\d+)")
_LIST_LIMIT = 60  # names in a 404 message


class CatalogConfigError(ValueError):
    """A ``[models]`` setting that cannot work; the message names the key."""


@dataclass(frozen=True)
class Model:
    """One catalog entry. ``context`` maps an upstream kind to its input limit."""

    slug: str
    display_name: str
    context: Mapping[str, int]
    efforts: tuple[str, ...] = ()
    default_effort: str | None = None
    description: str = ""
    hidden: bool = False
    created: int = CREATED
    codex_instructions: str = ""
    codex_min_version: tuple[int, int, int] | None = None
    codex: Mapping = field(default_factory=dict)

    def __hash__(self) -> int:  # the mappings are never mutated; a slug is unique
        return hash(self.slug.lower())

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self.context)

    def context_window(self, kinds: Iterable[str] | None = None) -> int | None:
        """The smallest input limit over *kinds* that serve it (all when None)."""
        wanted = self.kinds if kinds is None else self.kinds & set(kinds)
        values = [self.context[k] for k in wanted if self.context[k]]
        return min(values) if values else None


@dataclass(frozen=True)
class Resolution:
    """What a requested name became.

    ``model`` goes upstream; ``effort`` is the effective reasoning effort
    (the explicit one if the request had it, else the suffix's, else None);
    ``suffix_effort`` is what the name's suffix said, for the log;
    ``alias`` is the alias rule used; ``via`` says which rule matched:
    ``catalog``, ``served``, ``alias`` or ``allow``.
    """

    asked: str
    model: str
    effort: str | None
    alias: str | None
    suffix_effort: str | None = None
    via: str = "catalog"
    entry: Model | None = field(default=None, repr=False, compare=False)

    @property
    def apply_effort(self) -> bool:
        """True when the gateway must write ``effort`` into the request."""
        return self.suffix_effort is not None and self.effort == self.suffix_effort


@dataclass(frozen=True)
class Catalog:
    models: tuple[Model, ...]
    aliases: tuple[tuple[str, str], ...] = ()
    allow: tuple[str, ...] = ()
    list_suffixed: bool = False
    codex_entries: str = "instructed"
    codex_bundled: frozenset[str] = frozenset(CODEX_BUNDLED)
    codex_efforts: tuple[str, ...] = CODEX_SAFE_EFFORTS

    def __post_init__(self) -> None:
        by_slug = {m.slug.lower(): m for m in self.models}
        exact = {}
        globs = []
        for pattern, target in self.aliases:
            pattern = pattern.lower()
            if _GLOB_CHARS & set(pattern):
                globs.append((re.compile(fnmatch.translate(pattern)), pattern, target))
            else:
                exact.setdefault(pattern, target)
        allow = [re.compile(fnmatch.translate(p)) for p in self.allow]
        object.__setattr__(self, "_by_slug", by_slug)
        object.__setattr__(self, "_exact_aliases", exact)
        object.__setattr__(self, "_glob_aliases", tuple(globs))
        object.__setattr__(self, "_allow", tuple(allow))

    # -- building ------------------------------------------------------------
    @classmethod
    def default(cls) -> Catalog:
        return cls.from_config({})

    @classmethod
    def from_config(cls, section: Mapping | None) -> Catalog:
        """Built-in defaults merged with the plain ``[models]`` table."""
        return _from_config(dict(section or {}))

    # -- queries -------------------------------------------------------------
    def get(self, name: str) -> Model | None:
        return self._by_slug.get(name.strip().lower()) if isinstance(name, str) else None

    def slugs(self, kinds: Iterable[str] | None = None) -> list[str]:
        """Listed slugs in catalog order, optionally only those *kinds* serve."""
        wanted = None if kinds is None else set(kinds)
        return [m.slug for m in self.models
                if not m.hidden and (wanted is None or m.kinds & wanted)]

    def kinds_for(self, model: str) -> frozenset[str]:
        """Upstream kinds that serve *model*; every kind for a name outside the
        catalog (an account's ``--models`` or an ``allow`` glob vouches for it)."""
        entry = self.get(model)
        return entry.kinds if entry is not None else frozenset(KINDS)


# -- resolution ---------------------------------------------------------------

def resolve(name, catalog: Catalog, *, explicit_effort: str | None = None,
            served: Iterable[str] | None = None) -> Resolution:
    """Map a client's model name to the upstream model and effort.

    ``served`` is the union of the accounts' ``--models`` lists: those names
    are accepted even when the catalog does not know them. Raises
    ``GatewayError(404, code="model_not_found")`` naming the available models,
    or a 400 for a malformed name, always before any upstream request.
    """
    if not isinstance(name, str) or not name.strip():
        raise bad_request("'model' must be a non-empty string.", param="model")
    asked = name.strip()
    explicit = explicit_effort.strip().lower() if isinstance(explicit_effort, str) \
        and explicit_effort.strip() else None
    served_map = {s.strip().lower(): s.strip() for s in served or () if isinstance(s, str)
                  and s.strip()}
    full = asked.lower()
    base, suffix = split_suffix(full)
    candidates = [(full, None)] + ([(base, suffix)] if suffix is not None else [])

    hit = None
    for cand, eff in candidates:
        hit = _exact(cand, catalog, served_map)
        if hit is not None:
            break
    if hit is None:
        for cand, eff in reversed(candidates):
            hit = _pattern(cand, catalog, served_map)
            if hit is not None:
                break
    if hit is None:
        raise _not_found(asked, catalog, served_map)

    model, via, alias, target_effort = hit
    if eff is not None:
        eff = _effort(eff, asked)
    suffix_effort = eff or target_effort
    return Resolution(asked=asked, model=model, effort=explicit or suffix_effort,
                      alias=alias, suffix_effort=suffix_effort, via=via,
                      entry=catalog.get(model))


def split_suffix(name: str) -> tuple[str, str | None]:
    """``"gpt-5.5-high"`` → ``("gpt-5.5", "high")``; ``"x(y)"`` → ``("x", "y")``;
    no suffix → ``(name, None)``. The effort is not validated here."""
    m = MODEL_SUFFIX.search(name)
    if m is None or m.start() == 0:
        return name, None
    raw = m.group(1)
    effort = raw[1:-1].strip() if raw.startswith("(") else m.group(2)
    return name[:m.start()].rstrip(), effort


def request_effort(body: Mapping) -> str | None:
    """The explicit ``reasoning.effort`` of a normalised Responses body."""
    reasoning = body.get("reasoning") if isinstance(body, Mapping) else None
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    return effort if isinstance(effort, str) and effort.strip() else None


def apply(body: dict, res: Resolution) -> None:
    """Write the resolution into a normalised Responses body: the upstream
    model, and the suffix's effort unless the request chose one itself."""
    body["model"] = res.model
    if res.apply_effort and request_effort(body) is None:
        reasoning = body.get("reasoning")
        body["reasoning"] = {**reasoning, "effort": res.effort} \
            if isinstance(reasoning, dict) else {"effort": res.effort}


def _exact(name: str, catalog: Catalog, served: dict[str, str]):
    entry = catalog._by_slug.get(name)
    if entry is not None:
        return entry.slug, "catalog", None, None
    if name in served:
        return served[name], "served", None, None
    target = catalog._exact_aliases.get(name)
    if target is not None:
        return _target(target, catalog, served, name)
    return None


def _pattern(name: str, catalog: Catalog, served: dict[str, str]):
    for rx, pattern, target in catalog._glob_aliases:
        if rx.match(name):
            return _target(target, catalog, served, pattern)
    if any(rx.match(name) for rx in catalog._allow):
        return name, "allow", None, None
    return None


def _target(target: str, catalog: Catalog, served: dict[str, str], rule: str):
    """An alias target: a slug, optionally with an effort suffix (no chains)."""
    base, effort = (target, None) if catalog.get(target) else split_suffix(target)
    entry = catalog.get(base)
    model = entry.slug if entry is not None else served.get(base, base)
    return model, "alias", rule, effort


def _effort(value: str, asked: str) -> str:
    if value in EFFORTS:
        return value
    raise bad_request(
        f"Unknown reasoning effort '{value[:40]}' in model name '{asked[:120]}'; "
        f"use one of: {', '.join(EFFORTS)}.", param="model", code="invalid_effort")


def _not_found(asked: str, catalog: Catalog, served: dict[str, str]) -> GatewayError:
    names = catalog.slugs()
    names += [s for k, s in served.items() if k not in catalog._by_slug]
    shown = ", ".join(names[:_LIST_LIMIT])
    if len(names) > _LIST_LIMIT:
        shown += f", and {len(names) - _LIST_LIMIT} more"
    hint = "; an effort suffix such as -high or (high) may follow a model name"
    return GatewayError(
        404, f"The model '{asked[:120]}' does not exist on this gateway. "
             f"Available models: {shown or '(none configured)'}{hint}.",
        code="model_not_found", type="invalid_request_error", param="model")


# -- listing -----------------------------------------------------------------

def openai_list(catalog: Catalog, *, with_suffixes: bool | None = None,
                kinds: Iterable[str] | None = None,
                served: Iterable[str] | None = None) -> dict:
    """``GET /v1/models`` in OpenAI's shape, with ``context_window``.

    *with_suffixes* None follows ``list_suffixed``; *kinds* restricts the list
    to models the configured account kinds serve (and their context windows);
    *served* adds names only the accounts' ``--models`` know.
    """
    suffixed = catalog.list_suffixed if with_suffixes is None else with_suffixes
    wanted = None if kinds is None else set(kinds)
    data = []
    for m in catalog.models:
        if m.hidden or (wanted is not None and not m.kinds & wanted):
            continue
        ctx = m.context_window(wanted)
        data.append(_openai_entry(m.slug, m.created, ctx))
        if suffixed:
            data += [_openai_entry(f"{m.slug}-{e}", m.created, ctx) for e in m.efforts
                     if e in EFFORTS and catalog.get(f"{m.slug}-{e}") is None]
    known = {d["id"].lower() for d in data} | set(catalog._by_slug)
    for name in served or ():
        if isinstance(name, str) and name.strip() and name.strip().lower() not in known:
            known.add(name.strip().lower())
            data.append(_openai_entry(name.strip(), CREATED, None))
    return {"object": "list", "data": data}


def _openai_entry(model_id: str, created: int, ctx: int | None) -> dict:
    entry = {"id": model_id, "object": "model", "created": created, "owned_by": "openai"}
    if ctx:
        entry["context_window"] = ctx
    return entry


def codex_list(catalog: Catalog, client_version: str | None, *,
               upstream: Iterable[Mapping] | None = None,
               kinds: Iterable[str] | None = None) -> dict:
    """Codex CLI's ``{"models": [ModelInfo...]}`` for ``?client_version=``.

    *upstream* is the ``models`` list of the upstream's own answer for the
    same client version (the Codex backend's ``GET /models``), passed through
    as is: it is complete, instructions included. Catalog models it lacks are
    described per ``codex_entries`` (see the module docstring).
    """
    version = parse_version(client_version)
    out = [dict(e) for e in upstream or () if isinstance(e, Mapping) and e.get("slug")]
    described = {str(e["slug"]).lower() for e in out}
    wanted = None if kinds is None else set(kinds)
    for priority, m in enumerate(catalog.models):
        if (m.slug.lower() in described or catalog.codex_entries == "none"
                or (wanted is not None and not m.kinds & wanted)
                or (version and m.codex_min_version and version < m.codex_min_version)):
            continue
        if catalog.codex_entries == "instructed" and not m.codex_instructions:
            continue
        if m.slug.lower() in catalog.codex_bundled and not m.codex_instructions:
            continue
        out.append(codex_entry(m, priority, catalog, wanted))
    return {"models": out}


def codex_entry(m: Model, priority: int, catalog: Catalog,
                kinds: Iterable[str] | None = None) -> dict:
    """One Codex ``ModelInfo``.

    Field set: the union of the required fields of the ModelInfo schemas
    Codex CLI has shipped (an absent required field fails the whole list;
    unknown fields are ignored). Values we cannot know take what Codex itself
    uses for a model it has no metadata for, or what 0.171 was seen to send.
    """
    efforts = [e for e in m.efforts if e in catalog.codex_efforts]
    entry = {
        "slug": m.slug,
        "display_name": m.display_name,
        "description": m.description or m.display_name,
        "supported_reasoning_levels": [
            {"effort": e, "description": _EFFORT_TEXT.get(e, e)} for e in efforts],
        "shell_type": "shell_command",
        "visibility": "hide" if m.hidden else "list",
        "supported_in_api": True,
        "priority": priority,
        "additional_speed_tiers": [],
        "availability_nux": None,
        "upgrade": None,
        "base_instructions": m.codex_instructions,
        "supports_reasoning_summaries": bool(efforts),
        "default_reasoning_summary": "auto",
        "support_verbosity": False,
        "default_verbosity": None,
        "apply_patch_tool_type": None,
        "web_search_tool_type": "text",
        "truncation_policy": {"mode": "bytes", "limit": 10000},
        "supports_parallel_tool_calls": True,
        "supports_image_detail_original": False,
        "effective_context_window_percent": 95,
        "experimental_supported_tools": [],
        "input_modalities": ["text", "image"],
        "supports_search_tool": False,
    }
    if m.default_effort in efforts:
        entry["default_reasoning_level"] = m.default_effort
    ctx = m.context_window(kinds)
    if ctx:
        entry["context_window"] = ctx
    if m.codex_instructions:
        entry["model_messages"] = {"instructions_template": m.codex_instructions,
                                   "instructions_variables": None}
    entry.update(m.codex)
    return entry


def codex_etag(payload: Mapping) -> str:
    """A strong ETag of a :func:`codex_list` answer: the same on every worker,
    so Codex's ETag check renews its cache instead of refetching."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True,
                                       separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:20]}"'


def parse_version(value) -> tuple[int, int, int] | None:
    m = _VERSION.match(value) if isinstance(value, str) else None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


# -- built-in defaults ---------------------------------------------------------
# Context windows: the largest input each upstream accepts. The Codex backend
# refuses >= 272k input tokens for gpt-5.x (peers theme 11: pi #3641) and Codex
# CLI uses 272000 for them; the OpenAI API takes 400k total / 128k output for
# gpt-5.x (272k input) and 1.05M for gpt-5.4. Efforts per CLIProxyAPI's
# catalogue; anything unverified is overridable under [[models.models]].

_LMH = ("low", "medium", "high")
_LMHX = ("low", "medium", "high", "xhigh")
_NLMHX = ("none", "low", "medium", "high", "xhigh")
_LMHXM = ("low", "medium", "high", "xhigh", "max")
_C = {"codex": 272_000}
_CO = {"codex": 272_000, "openai": 272_000}

_BUILTIN: tuple[Model, ...] = (
    Model("gpt-5.5", "GPT-5.5", {"codex": 272_000, "openai": 1_050_000}, _NLMHX, "medium"),
    Model("gpt-5.4", "GPT-5.4", {"codex": 272_000, "openai": 1_050_000}, _LMHX, "medium"),
    Model("gpt-5.4-mini", "GPT-5.4 mini", _CO, _LMHX, "medium"),
    Model("gpt-5.6-sol", "GPT-5.6 Sol", _C, _LMHXM, "medium"),
    Model("gpt-5.6-terra", "GPT-5.6 Terra", _C, _LMHXM, "medium"),
    Model("gpt-5.6-luna", "GPT-5.6 Luna", _C, _LMHXM, "medium"),
    Model("gpt-6.1-sol", "GPT-6.1 Sol", _C, _LMHXM, "low"),
    Model("gpt-5.3-codex", "GPT-5.3 Codex", _C, _LMHX, "medium"),
    Model("gpt-5.3-codex-spark", "GPT-5.3 Codex Spark", {"codex": 128_000}, _LMH, "medium"),
    Model("gpt-5.2", "GPT-5.2", _CO, _NLMHX, "medium"),
    Model("gpt-5.2-codex", "GPT-5.2 Codex", _CO, _LMHX, "medium"),
    Model("gpt-5.1", "GPT-5.1", _CO, ("none", "low", "medium", "high"), "medium"),
    Model("gpt-5.1-codex", "GPT-5.1 Codex", _CO, _LMH, "medium"),
    Model("gpt-5.1-codex-max", "GPT-5.1 Codex Max", _CO, _LMHX, "medium"),
    Model("gpt-5.1-codex-mini", "GPT-5.1 Codex mini", _CO, _LMH, "medium"),
    Model("gpt-5", "GPT-5", _CO, ("minimal", "low", "medium", "high"), "medium"),
    Model("gpt-5-codex", "GPT-5 Codex", _CO, _LMH, "medium"),
    Model("gpt-5-codex-mini", "GPT-5 Codex mini", _C, _LMH, "medium"),
    Model("gpt-5-mini", "GPT-5 mini", {"openai": 272_000},
          ("minimal", "low", "medium", "high"), "medium"),
    Model("gpt-5-nano", "GPT-5 nano", {"openai": 272_000},
          ("minimal", "low", "medium", "high"), "medium"),
    Model("gpt-4.1", "GPT-4.1", {"openai": 1_047_576}),
)


def builtin_aliases(main: str, small: str) -> tuple[tuple[str, str], ...]:
    """Claude Code's and Gemini CLI's own names by tier: opus/sonnet and Gemini's
    pro (any other gemini-*) → main; haiku, Gemini's flash and flash-lite → small."""
    return (("claude-*haiku*", small), ("claude-*opus*", main),
            ("claude-*sonnet*", main), ("claude-*", main),
            ("gemini-*flash*", small), ("gemini-*", main))


# -- config parsing ------------------------------------------------------------

_SECTION_KEYS = {"builtin", "remove", "main_model", "small_model", "list_suffixed", "allow",
                 "aliases", "models", "codex_entries", "codex_bundled", "codex_efforts"}
_MODEL_KEYS = {"slug", "display_name", "context_window", "efforts", "default_effort",
               "upstreams", "description", "hidden", "created", "codex_instructions",
               "codex_min_version", "codex"}


def _from_config(sec: dict) -> Catalog:
    _keys(sec, _SECTION_KEYS, "models")
    builtin = _bool(sec.get("builtin", True), "models.builtin")
    remove = {s.lower() for s in _strings(sec.get("remove", []), "models.remove")}
    models = {m.slug.lower(): m for m in _BUILTIN if m.slug.lower() not in remove} \
        if builtin else {}
    entries = sec.get("models", [])
    if not isinstance(entries, list):
        raise CatalogConfigError("models.models must be a list of tables")
    for i, raw in enumerate(entries):
        m = _model(raw, f"models.models[{i}]", models)
        models[m.slug.lower()] = m
    catalog_models = tuple(models.values())
    lookup = Catalog(catalog_models)

    allow = tuple(p.lower() for p in _strings(sec.get("allow", []), "models.allow"))
    aliases = sec.get("aliases", {})
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
    # The Claude and Gemini tiers follow main_model/small_model; with no main model in
    # the catalog (builtin = false and none set) there are no tier aliases.
    main = _tier(sec, "main_model", MAIN_MODEL, lookup, allow)
    small = _tier(sec, "small_model", SMALL_MODEL, lookup, allow) or main
    if main:
        rules += builtin_aliases(main, small)

    entries_mode = sec.get("codex_entries", "instructed")
    if entries_mode not in CODEX_ENTRIES:
        raise CatalogConfigError(f"models.codex_entries must be one of {list(CODEX_ENTRIES)}")
    efforts = tuple(_strings(sec.get("codex_efforts", list(CODEX_SAFE_EFFORTS)),
                             "models.codex_efforts"))
    return Catalog(
        catalog_models, aliases=tuple(rules), allow=allow,
        list_suffixed=_bool(sec.get("list_suffixed", False), "models.list_suffixed"),
        codex_entries=entries_mode,
        codex_bundled=frozenset(s.lower() for s in _strings(
            sec.get("codex_bundled", list(CODEX_BUNDLED)), "models.codex_bundled")),
        codex_efforts=efforts)


def _model(raw, where: str, existing: dict[str, Model]) -> Model:
    if not isinstance(raw, Mapping):
        raise CatalogConfigError(f"{where} must be a table")
    _keys(raw, _MODEL_KEYS, where)
    slug = raw.get("slug")
    if not isinstance(slug, str) or not slug.strip() or _GLOB_CHARS & set(slug):
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
