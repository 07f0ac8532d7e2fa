"""gateway.models.resolution
~~~~~~~~~~~~~~~~~~~~~~~~~~~
What a client's model name becomes upstream: the model and the reasoning
effort. The executor calls :func:`resolve` before any upstream request; the
order of the rules and the effort precedence are in docs/models.md.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import GatewayError, bad_request
from .catalog import EFFORTS, MODEL_SUFFIX, Catalog, Model

_LIST_LIMIT = 60  # names in a 404 message


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
    entry = catalog.get(name)
    if entry is not None:
        return entry.slug, "catalog", None, None
    if name in served:
        return served[name], "served", None, None
    target = catalog.exact_alias(name)
    if target is not None:
        return _target(target, catalog, served, name)
    return None


def _pattern(name: str, catalog: Catalog, served: dict[str, str]):
    rule = catalog.glob_alias(name)
    if rule is not None:
        pattern, target = rule
        return _target(target, catalog, served, pattern)
    if catalog.allows(name):
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
    names += [s for k, s in served.items() if catalog.get(k) is None]
    shown = ", ".join(names[:_LIST_LIMIT])
    if len(names) > _LIST_LIMIT:
        shown += f", and {len(names) - _LIST_LIMIT} more"
    hint = "; an effort suffix such as -high or (high) may follow a model name"
    return GatewayError(
        404, f"The model '{asked[:120]}' does not exist on this gateway. "
             f"Available models: {shown or '(none configured)'}{hint}.",
        code="model_not_found", type="invalid_request_error", param="model")
