"""gateway.dialects.messages.request
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Anthropic Messages request (``POST /v1/messages``) -> one Responses request.

Pure and deterministic: the same conversation always maps to the same
``input`` (generated ids and shortened names are hashes, never random), so
the upstream prompt prefix stays cacheable turn after turn. This module reads
the body's top level, the messages' structure and the parameters; content
blocks are mapped in :mod:`.content`, tools in :mod:`.tools`, the session
signal and the client key come from :mod:`.session`, and what was dropped is
collected in :mod:`.translation`.

**Never a 400 for something unknown.** Claude Code answers a 400 by stripping
a feature and resending, so a strict gateway silently degrades the session.
Unknown fields, blocks, tool types and betas are dropped and named in
``MessagesRequest.dropped`` (for ``x-gateway-dropped-params``). Only what
cannot be served at all is a 400: a body that is not an object, no model,
``messages`` not a non-empty list, a message that is not an object, an
unknown role, content that is neither a string nor a list. Those messages
are worded like Anthropic's own (``<path>: <problem>``), see
:mod:`gateway.dialects`.

Mapping table (Messages -> Responses) of what this module maps:

=============================  ==================================================
``thinking``                   adaptive/enabled: reasoning summaries requested
                               and shown as thinking blocks; ``budget_tokens``
                               picks an effort when none is given
``output_config.effort``       ``reasoning.effort`` (``max`` -> ``xhigh``); a
(also per message)             message-level value (latest wins) overrides the
                               top-level one
``output_config.format``,      ``text.format`` (``json_schema``)
``output_format``
``max_tokens``                 ``max_output_tokens`` (the upstream profile drops
                               it where the backend refuses it)
``temperature``, ``top_p``     copied (dropped by the profile where refused)
``top_k``                      no equivalent: dropped
``stop_sequences``             ``MessagesRequest.stop``: emulated on the output
``stream``                     ``MessagesRequest.stream``
``metadata.user_id``           read for the session id, not forwarded
``service_tier: auto``         ignored (it changes nothing); other values dropped
``anthropic-beta`` header      betas the gateway serves (or that change nothing
                               behind it) pass; others are reported
anything else                  dropped and reported (``context_management``,
                               ``safeguards``, ``container``, ``mcp_servers`` …)
=============================  ==================================================

``stream``, ``store`` and ``prompt_cache_key`` are never set here: the
executor and the upstream profile own them. ``include`` always asks for
``reasoning.encrypted_content``, which the thinking signatures carry.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from gateway.dialects.validate import check_model_name
from gateway.errors import GatewayError, bad_request

from ..stops import stop_list
from . import content
from . import tools as tools_
from .session import header, session_signal
from .translation import Translation

ENCRYPTED_REASONING = "reasoning.encrypted_content"
WEB_SEARCH_SOURCES = "web_search_call.action.sources"

# Read, mapped or deliberately ignored; any other top-level field is reported.
_KNOWN = frozenset((
    "model", "messages", "system", "tools", "tool_choice", "metadata", "max_tokens",
    "temperature", "top_p", "stop_sequences", "stream", "thinking", "output_config",
    "output_format", "service_tier", "top_k",
))
_COPIED = ("temperature", "top_p")
_MESSAGE_KEYS = frozenset(("role", "content", "output_config", "cache_control"))
_EFFORTS = {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium",
            "high": "high", "xhigh": "xhigh", "max": "xhigh"}
# Beta families (the name without its date) whose feature the gateway serves
# or that change nothing behind it; betas whose feature lives in a body field
# (context-management, dangerous-tool-use) are listed too: that field is what
# gets reported. Any other beta is reported as ``beta:<name>``.
_BETAS = frozenset((
    "claude-code", "oauth", "interleaved-thinking", "effort", "per-turn-control",
    "mid-conversation-tool-changes", "advanced-tool-use", "tool-search-tool",
    "fine-grained-tool-streaming", "token-efficient-tools", "prompt-caching",
    "extended-cache-ttl", "output-128k", "output-300k", "structured-outputs",
    "thinking-display-updates", "context-management", "dangerous-tool-use",
    "context-1m", "files-api", "pdfs", "web-search", "thinking-token-count",
    "token-counting", "mid-conversation-output-config",
))
_BETA_DATE = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


@dataclass(slots=True)
class MessagesRequest:
    """A translated request plus what the answer side needs to undo it."""

    responses: dict
    model: str
    stream: bool = False
    thinking: bool = False  # show reasoning as thinking blocks (the client asked for it)
    stop: list[str] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)  # shortened -> original
    param_aliases: dict[str, str] = field(default_factory=dict)  # responses -> client name
    dropped: list[str] = field(default_factory=list)
    session: str | None = None  # the continuity signal (session id, "/agent id" appended)


def translate_request(body: dict, headers: Mapping | None = None, *,
                      max_tool_name: int = 64) -> MessagesRequest:
    """Map a Messages body (and its headers); raise a 400 ``GatewayError`` only
    for what cannot be served."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("model", "a non-empty string is required.")
    check_model_name(model)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "a non-empty array of messages is required.")
    headers = headers if headers is not None else {}

    t = Translation(max_tool_name, tools_.referenced_tools(messages))
    out: dict = {"model": model, "instructions": ""}

    system = content.system_item(t, body.get("system"))
    items = [system] if system is not None else []
    message_effort = _messages(t, messages, items)
    out["input"] = items

    tools = tools_.tools(t, body.get("tools"))
    if tools:
        out["tools"] = tools
    choice, parallel = tools_.tool_choice(t, body.get("tool_choice"), tools)
    if choice is not None:
        out["tool_choice"] = choice
    if tools:
        out["parallel_tool_calls"] = parallel

    reasoning, show = _reasoning(t, body, message_effort)
    if reasoning:
        out["reasoning"] = reasoning
    out["include"] = [ENCRYPTED_REASONING]
    if t.web_search:  # the sources become web_search_tool_result blocks
        out["include"].append(WEB_SEARCH_SOURCES)
    fmt = _output_format(t, body)
    if fmt is not None:
        out["text"] = {"format": fmt}
    aliases = _sampling(t, body, out)
    stop = _stop_sequences(t, body.get("stop_sequences"))
    for key in body:
        if key not in _KNOWN:
            t.drop(key)
    _betas(t, header(headers, "anthropic-beta"))
    return MessagesRequest(
        responses=out,
        model=model,
        stream=body.get("stream") is True,
        thinking=show,
        stop=stop,
        tool_names=t.names.restore,
        param_aliases=aliases,
        dropped=t.reported(),
        session=session_signal(body, headers),
    )


def _invalid(path: str, problem: str) -> GatewayError:
    """A 400 worded like Anthropic's own: ``<path>: <problem>``."""
    return bad_request(f"{path}: {problem}", path)


def _messages(t: Translation, messages: list, items: list) -> str | None:
    """Append each message's items; the latest message-level effort."""
    latest = None
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _invalid(where, "a message must be an object.")
        for key in msg:
            if key not in _MESSAGE_KEYS:
                t.drop(f"messages.{key}")
        effort = _effort(t, msg.get("output_config"), "messages.output_config")
        if effort is not None:
            latest = effort
        role = msg.get("role")
        blocks = msg.get("content")
        if not isinstance(blocks, (str, list)):
            raise _invalid(f"{where}.content",
                           "a string or an array of content blocks is required.")
        if role in ("system", "developer"):
            content.developer(t, blocks, items)
        elif role == "user":
            content.user(t, blocks, items)
        elif role == "assistant":
            content.assistant(t, blocks, i, items)
        else:
            raise _invalid(f"{where}.role",
                           f"expected \"user\" or \"assistant\", got {repr(role)[:40]}.")
    return latest


# --- parameters ---------------------------------------------------------------------------


def _reasoning(t: Translation, body: dict, message_effort: str | None) -> tuple[dict, bool]:
    """``reasoning`` and whether thinking blocks are shown.

    Effort: the latest message-level ``output_config.effort`` (per-turn
    control), else the top-level one, else one picked from ``budget_tokens``.
    """
    thinking = _thinking(t, body.get("thinking"))
    effort = _effort(t, body.get("output_config"), "output_config")
    if message_effort is not None:
        effort = message_effort
    if effort is None and thinking is not None:
        effort = thinking[1]
    reasoning = {} if effort is None else {"effort": effort}
    show = thinking is not None and thinking[0] and effort != "none"
    if show:
        reasoning["summary"] = "auto"
    return reasoning, show


def _thinking(t: Translation, thinking) -> tuple[bool, str | None] | None:
    """``(show thinking, effort from budget_tokens)``; None when absent."""
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return False, None
    if kind == "adaptive":
        return True, None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        effort = None
        if isinstance(budget, int) and not isinstance(budget, bool):
            effort = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
        return True, effort
    t.drop("thinking")
    return None


def _effort(t: Translation, config, where: str) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        t.drop(where)
        return None
    for key in config:
        if key not in ("effort", "format"):
            t.drop(f"{where}.{key}")
    if "format" in config and where != "output_config":
        t.drop(f"{where}.format")
    value = config.get("effort")
    if value is None:
        return None
    effort = _EFFORTS.get(value) if isinstance(value, str) else None
    if effort is None:
        t.drop(f"{where}.effort")
    return effort


def _output_format(t: Translation, body: dict) -> dict | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    where = "output_config.format"
    if fmt is None and body.get("output_format") is not None:
        fmt, where = body["output_format"], "output_format"
    if fmt is None:
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" \
            and isinstance(fmt.get("schema"), dict):
        schema = {k: v for k, v in fmt["schema"].items() if k != "$schema"}
        return {"type": "json_schema", "name": "output", "schema": schema}
    t.drop(where)
    return None


def _stop_sequences(t: Translation, value) -> list[str]:
    stops, dropped = stop_list(value)
    if dropped:
        t.drop("stop_sequences")
    return stops


def _number(value, *, integer: bool = False) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, (int, float))


def _sampling(t: Translation, body: dict, out: dict) -> dict[str, str]:
    """``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``service_tier``.

    Values of the wrong type are dropped here rather than forwarded into an
    upstream 400. Returns the Responses -> client names of what was renamed,
    so the upstream profile reports its own drops in the client's spelling.
    """
    aliases = {}
    value = body.get("max_tokens")
    if value is not None:
        if _number(value, integer=True) and value > 0:
            out["max_output_tokens"] = value
            aliases["max_output_tokens"] = "max_tokens"
        else:
            t.drop("max_tokens")
    for key in _COPIED:
        value = body.get(key)
        if value is not None:
            if _number(value):
                out[key] = value
            else:
                t.drop(key)
    if body.get("top_k") is not None:
        t.drop("top_k")  # no Responses equivalent
    tier = body.get("service_tier")
    if tier is not None and tier != "auto":  # "auto" is what the upstream does anyway
        t.drop("service_tier")
    return aliases


def _betas(t: Translation, value: str | None) -> None:
    for beta in (value or "").split(","):
        beta = beta.strip()
        if beta and _BETA_DATE.sub("", beta) not in _BETAS:
            t.drop("beta:" + beta)
