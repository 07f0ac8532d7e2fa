"""gateway.dialects.messages.tools
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Messages ``tools`` and ``tool_choice`` -> their Responses counterparts.

=============================  ==================================================
``tools``                      function tools (``input_schema`` -> ``parameters``
                               without ``$schema``, ``strict`` false unless set);
                               ``defer_loading`` tools are offered only once a
                               ``tool_reference`` names them, so
                               ``DeferredToolPlaceholder`` never is;
                               ``web_search_*`` -> ``web_search``; other typed
                               tools are dropped
``tool_choice``                auto / any -> required / tool -> function / none;
                               ``disable_parallel_tool_use`` ->
                               ``parallel_tool_calls: false``
=============================  ==================================================
"""
from __future__ import annotations

from gateway.dialects.tools import EMPTY_SCHEMA

from .translation import Translation

_TOOL_KEYS = frozenset((
    "name", "description", "input_schema", "type", "cache_control", "defer_loading", "strict",
))
_WEB_SEARCH_KEYS = frozenset(("name", "type", "cache_control", "allowed_domains", "user_location"))


def referenced_tools(messages: list) -> frozenset[str]:
    """Tool names a ``tool_reference`` block loaded anywhere in the history."""
    names = set()
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            inner = block.get("content")
            for part in inner if isinstance(inner, list) else ():
                if isinstance(part, dict) and part.get("type") == "tool_reference" \
                        and isinstance(part.get("tool_name"), str):
                    names.add(part["tool_name"])
    return frozenset(names)


def tools(t: Translation, tools) -> list[dict]:
    out = []
    for tool in t.listed(tools, "tools"):
        if not isinstance(tool, dict):
            t.drop("tools.invalid")
            continue
        kind = tool.get("type")
        if kind in (None, "custom", "function"):
            _unknown_keys(t, tool, _TOOL_KEYS)
            mapped = _function_tool(t, tool)
            if mapped is not None:
                out.append(mapped)
        elif isinstance(kind, str) and kind.startswith("web_search"):
            _unknown_keys(t, tool, _WEB_SEARCH_KEYS)
            out.append(_web_search_tool(tool))
            t.web_search = True
        else:
            t.drop("tools." + (kind if isinstance(kind, str) else "invalid"))
    return out


def tool_choice(t: Translation, choice, tools: list) -> tuple[object, bool]:
    """``(tool_choice or None, parallel_tool_calls)``."""
    if choice is None:
        return None, True
    if not isinstance(choice, dict):
        t.drop("tool_choice")
        return None, True
    parallel = choice.get("disable_parallel_tool_use") is not True
    kind = choice.get("type")
    names = {tool["name"] for tool in tools if tool.get("type") == "function"}
    if kind == "auto":
        return ("auto" if tools else None), parallel
    if kind == "none":
        return ("none" if tools else None), parallel
    if kind == "any":
        if tools:
            return "required", parallel
    elif kind == "tool" and isinstance(choice.get("name"), str):
        short = t.names(choice["name"])
        if short in names:
            return {"type": "function", "name": short}, parallel
    t.drop("tool_choice")
    return None, parallel


def _unknown_keys(t: Translation, tool: dict, known: frozenset) -> None:
    for key in tool:
        if key not in known:
            t.drop(f"tools.{key}")


def _function_tool(t: Translation, tool: dict) -> dict | None:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        t.drop("tools.invalid")
        return None
    if tool.get("defer_loading") is True and name not in t.referenced:
        return None  # not loaded yet: Anthropic would not show it to the model either
    schema = tool.get("input_schema")
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if k != "$schema"}
    else:
        schema = dict(EMPTY_SCHEMA)
    out = {"type": "function", "name": t.names(name)}
    if isinstance(tool.get("description"), str):
        out["description"] = tool["description"]
    out["parameters"] = schema
    # Non-strict unless asked: Claude tools have optional properties that
    # strict mode would refuse.
    out["strict"] = tool.get("strict") is True
    return out


def _web_search_tool(tool: dict) -> dict:
    """Anthropic's server web search -> the Responses ``web_search`` tool."""
    out: dict = {"type": "web_search"}
    domains = tool.get("allowed_domains")
    if isinstance(domains, list) and all(isinstance(d, str) for d in domains) and domains:
        out["filters"] = {"allowed_domains": domains}
    location = tool.get("user_location")
    if isinstance(location, dict):
        loc = {k: location[k] for k in ("city", "region", "country", "timezone")
               if isinstance(location.get(k), str)}
        if loc:
            out["user_location"] = {"type": "approximate", **loc}
    return out
