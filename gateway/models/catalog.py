"""gateway.models.catalog
~~~~~~~~~~~~~~~~~~~~~~~~
The model catalog's types: a :class:`Model` entry and the :class:`Catalog`
the gateway resolves names against and lists. Pure data with lookups; the
``[models]`` table becomes a catalog in :mod:`.table`, names resolve in
:mod:`.resolution`, and the two listings are in :mod:`.listing`. What the
settings mean: docs/models.md.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Suffixes the gateway reads as a reasoning effort. continuity.model_family
# strips the same pattern, so a suffixed and a plain name share one family.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
MODEL_SUFFIX = re.compile(r"(\(.*\)|-(minimal|low|medium|high|xhigh|max|none))$")

KINDS = ("codex", "openai")     # the account kinds that can serve a model
CREATED = 1767225600            # fixed, so every worker lists the same object
GLOB_CHARS = frozenset("*?[")   # a name with one of these is a pattern


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
class Catalog:
    """The models, alias rules (exact names or globs, first match wins),
    ``allow`` globs, and how the catalog is listed to Codex CLI."""

    models: tuple[Model, ...]
    aliases: tuple[tuple[str, str], ...] = ()
    allow: tuple[str, ...] = ()
    list_suffixed: bool = False
    codex_entries: str = "instructed"
    codex_bundled: frozenset[str] = frozenset()
    codex_efforts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        exact: dict[str, str] = {}
        globs = []
        for pattern, target in self.aliases:
            pattern = pattern.lower()
            if GLOB_CHARS & set(pattern):
                globs.append((re.compile(fnmatch.translate(pattern)), pattern, target))
            else:
                exact.setdefault(pattern, target)
        object.__setattr__(self, "_by_slug", {m.slug.lower(): m for m in self.models})
        object.__setattr__(self, "_exact_aliases", exact)
        object.__setattr__(self, "_glob_aliases", tuple(globs))
        object.__setattr__(self, "_allow",
                           tuple(re.compile(fnmatch.translate(p)) for p in self.allow))

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

    def exact_alias(self, name: str) -> str | None:
        """The target of an alias spelled exactly *name* (lower-cased)."""
        return self._exact_aliases.get(name)

    def glob_alias(self, name: str) -> tuple[str, str] | None:
        """``(pattern, target)`` of the first glob alias matching *name*."""
        for rx, pattern, target in self._glob_aliases:
            if rx.match(name):
                return pattern, target
        return None

    def allows(self, name: str) -> bool:
        """True when an ``allow`` glob lets *name* through unlisted."""
        return any(rx.match(name) for rx in self._allow)
