"""gateway.models.listing
~~~~~~~~~~~~~~~~~~~~~~~
The catalog as clients list it: ``GET /v1/models`` in OpenAI's shape
(:func:`openai_list`) and Codex CLI's ``GET /models?client_version=``
(:func:`codex_list`, with its ETag and the client-version parsing).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping

from .catalog import CREATED, EFFORTS, Catalog, Model

_EFFORT_TEXT = {
    "none": "No reasoning: fastest answers",
    "minimal": "Very light reasoning",
    "low": "Fast responses with lighter reasoning",
    "medium": "Balances speed and reasoning depth",
    "high": "Greater reasoning depth for complex problems",
    "xhigh": "Extra high reasoning depth",
    "max": "Maximum reasoning depth",
}
_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)\.(\d+)")


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
    known = {d["id"].lower() for d in data} | {m.slug.lower() for m in catalog.models}
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
    described per ``codex_entries`` (docs/models.md).
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
