"""gateway.dialects.messages.request
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Anthropic Messages request (``POST /v1/messages``) -> one Responses request.

Pure and deterministic: the same conversation always maps to the same
``input`` (generated ids and shortened names are hashes, never random), so
the upstream prompt prefix stays cacheable turn after turn.

**Never a 400 for something unknown.** Claude Code answers a 400 by stripping
a feature and resending, so a strict gateway silently degrades the session.
Unknown fields, blocks, tool types and betas are dropped and named in
``MessagesRequest.dropped`` (for ``x-gateway-dropped-params``). Only what
cannot be served at all is a 400: a body that is not an object, no model,
``messages`` not a non-empty list, a message that is not an object, an
unknown role, content that is neither a string nor a list.

Mapping table (Messages -> Responses):

=============================  ==================================================
``system`` (string or blocks)  one leading ``developer`` message (Codex CLI's own
                               layout; ``instructions`` stays ``""``); the
                               ``x-anthropic-billing-header:`` block is dropped:
                               it changes with the first prompt and would split
                               the cache between sessions
``messages`` role ``system``   a ``developer`` message at that position (Claude
                               Code sends one, sometimes last)
user/assistant ``text``        ``input_text`` / ``output_text`` parts
``image`` (base64, url, file)  ``input_image`` (data URL, URL, ``file_id``)
``document``                   PDF/base64, URL, file -> ``input_file``; plain
                               text and content sources -> ``input_text``
``search_result``              ``input_text`` (title, source, text)
``tool_use``                   ``function_call`` (``call_id`` = id, compact JSON
                               arguments); a missing id gets a stable hash
``tool_result``                ``function_call_output`` matched by id, put in
                               call order (Claude Code sends parallel results in
                               completion order); ``is_error`` becomes an
                               ``Error: `` prefix; a result for an unknown call
                               becomes user text (the upstream would refuse it)
``thinking`` with a gateway    a ``reasoning`` item (id, ``encrypted_content``,
signature                      the block's text as summary); other thinking
                               blocks and ``redacted_thinking`` are dropped
``cache_control``, citations   ignored (the upstream caches by prefix on its own)
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
anything else                  dropped and reported (``context_management``,
                               ``safeguards``, ``container``, ``mcp_servers`` …)
=============================  ==================================================

Names in ``dropped``: a top-level field as itself (``top_k``), a nested one
dotted (``output_config.task_budget``, ``messages.foo``, ``tools.input_examples``),
a content block as ``content.<type>``, a tool type as ``tools.<type>``, a beta
as ``beta:<name>``. They are sanitised (``[A-Za-z0-9_.:-]``, 64 characters,
at most 32 names) because they end up in a response header.

``stream``, ``store`` and ``prompt_cache_key`` are never set here: the
executor and the upstream profile own them. ``include`` always asks for
``reasoning.encrypted_content``, which the thinking signatures carry.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from gateway.errors import bad_request
# Shared with the chat dialect: the same hash-based names and ids, so a tool
# keeps one upstream name whichever dialect a client speaks.
from gateway.dialects.tools import ToolNames, stable_call_id

from .signature import decode_signature
from ..stops import stop_list

ENCRYPTED_REASONING = "reasoning.encrypted_content"
WEB_SEARCH_SOURCES = "web_search_call.action.sources"
BILLING_PREFIX = "x-anthropic-billing-header:"
SESSION_HEADER = "x-claude-code-session-id"
AGENT_HEADER = "x-claude-code-agent-id"

# Read, mapped or deliberately ignored; any other top-level field is reported.
_KNOWN = frozenset((
    "model", "messages", "system", "tools", "tool_choice", "metadata", "max_tokens",
    "temperature", "top_p", "stop_sequences", "stream", "thinking", "output_config",
    "output_format", "service_tier", "top_k",
))
_COPIED = ("temperature", "top_p")
_MESSAGE_KEYS = frozenset(("role", "content", "output_config", "cache_control"))
_TOOL_KEYS = frozenset((
    "name", "description", "input_schema", "type", "cache_control", "defer_loading", "strict",
))
_WEB_SEARCH_KEYS = frozenset(("name", "type", "cache_control", "allowed_domains", "user_location"))
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
_OLD_USER_ID = re.compile(r"_session_([0-9A-Za-z-]{8,})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_MAX_DROPPED = 32
_NAME_LIMIT = 64
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


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
    session_source: str | None = None  # "header" or "metadata.user_id"


def translate_request(body: dict, headers: Mapping | None = None, *,
                      max_tool_name: int = 64) -> MessagesRequest:
    """Map a Messages body (and its headers); raise a 400 ``GatewayError`` only
    for what cannot be served."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("model: a non-empty string is required.", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: a non-empty array of messages is required.", "messages")
    headers = headers if headers is not None else {}

    t = _Translation(max_tool_name)
    t.collect_references(messages)
    out: dict = {"model": model, "instructions": ""}

    system = _system_item(body.get("system"), t)
    items = [system] if system is not None else []
    items += t.messages(messages)
    out["input"] = items

    tools = t.tools(body.get("tools"))
    if tools:
        out["tools"] = tools
    choice, parallel = t.tool_choice(body.get("tool_choice"), tools)
    if choice is not None:
        out["tool_choice"] = choice
    if tools:
        out["parallel_tool_calls"] = parallel

    reasoning, show = _reasoning(t, body)
    if reasoning:
        out["reasoning"] = reasoning
    out["include"] = [ENCRYPTED_REASONING]
    if t.web_search:  # the sources become web_search_tool_result blocks
        out["include"].append(WEB_SEARCH_SOURCES)
    fmt = t.output_format(body)
    if fmt is not None:
        out["text"] = {"format": fmt}
    aliases = _sampling(t, body, out)
    stop = t.stop_sequences(body.get("stop_sequences"))
    for key in body:
        if key not in _KNOWN:
            t.drop(key)
    t.betas(_header(headers, "anthropic-beta"))
    session, source = session_signal(body, headers)
    return MessagesRequest(
        responses=out,
        model=model,
        stream=body.get("stream") is True,
        thinking=show,
        stop=stop,
        tool_names=t.names.restore,
        param_aliases=aliases,
        dropped=t.reported(),
        session=session,
        session_source=source,
    )


# --- headers, session, client key ---------------------------------------------------


def _header(headers: Mapping, name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == lname:
                value = val
                break
    return value.strip() if isinstance(value, str) and value.strip() else None


def session_signal(body: dict, headers: Mapping) -> tuple[str | None, str | None]:
    """The conversation's continuity signal and where it came from.

    ``X-Claude-Code-Session-Id`` first; else the ``session_id`` inside
    ``metadata.user_id`` (a JSON string in Claude Code 2.x, a
    ``user_…_session_<uuid>`` string before). Both stay the same across
    ``--continue`` and differ between sessions. Subagents share the session
    id and add ``x-claude-code-agent-id``: appended (``session/agent``) so
    their interleaved conversations get keys of their own. A plain
    ``user_id`` (an SDK user's own identifier) names a user, not a
    conversation, and is not used.
    """
    session = _header(headers, SESSION_HEADER)
    source = "header" if session else None
    if session is None:
        session = _metadata_session(body.get("metadata"))
        source = "metadata.user_id" if session else None
    if session is None:
        return None, None
    agent = _header(headers, AGENT_HEADER)
    return (f"{session}/{agent}" if agent else session), source


def _metadata_session(metadata) -> str | None:
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or not user_id.strip():
        return None
    text = user_id.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        value = parsed.get("session_id") if isinstance(parsed, dict) else None
        return value.strip() if isinstance(value, str) and value.strip() else None
    match = _OLD_USER_ID.search(text)
    return match.group(1) if match else None


def client_authorization(headers: Mapping) -> str | None:
    """The client's key as an ``Authorization`` value for the key check.

    Claude Code sends ``Authorization: Bearer`` for ``ANTHROPIC_AUTH_TOKEN``
    and ``x-api-key`` for ``ANTHROPIC_API_KEY``, both when both are set. The
    Bearer token wins: ``ANTHROPIC_AUTH_TOKEN`` is the variable meant for
    gateways (no key-approval prompt, and it does not collide with a real
    Anthropic key left in ``ANTHROPIC_API_KEY``); ``x-api-key`` (what the
    Anthropic SDKs send) is used when there is no Bearer token.
    """
    auth = _header(headers, "authorization")
    if auth and auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth
    key = _header(headers, "x-api-key")
    if key:
        return f"Bearer {key}"
    return auth


def without_reasoning(body: dict) -> dict:
    """The same request without replayed ``reasoning`` items.

    For a retry when the upstream refuses them (encrypted reasoning is bound
    to the account that produced it, so a conversation that failed over to
    another account may carry items that account cannot read).
    """
    items = body.get("input")
    if not isinstance(items, list):
        return dict(body)
    out = dict(body)
    out["input"] = [i for i in items if not (isinstance(i, dict) and i.get("type") == "reasoning")]
    return out


# --- the translation state -------------------------------------------------------------


def arguments_json(value) -> str:
    """``tool_use.input`` as the compact JSON string Responses wants.

    The standard library on purpose, like the continuity fingerprints: these
    bytes are part of the cached prompt prefix and must not change between
    releases. Key order is the client's.
    """
    if isinstance(value, str):
        return value
    return json.dumps({} if value is None else value, separators=(",", ":"), ensure_ascii=False)


def _safe_name(name: str) -> str:
    return _UNSAFE.sub("_", name)[:_NAME_LIMIT] or "_"


class _Translation:
    """State shared by the parts of one request's translation."""

    def __init__(self, max_tool_name: int) -> None:
        self.names = ToolNames(max_tool_name)
        self._dropped: dict[str, None] = {}
        self.referenced: set[str] = set()  # tool names loaded by a tool_reference
        self.calls: dict[str, int] = {}  # call id -> position among all calls so far
        self.message_effort: str | None = None
        self.web_search = False  # a web_search tool is offered

    # --- reporting ---

    def drop(self, name: str) -> None:
        self._dropped.setdefault(_safe_name(name), None)

    def reported(self) -> list[str]:
        names = list(self._dropped)
        return names if len(names) <= _MAX_DROPPED else names[:_MAX_DROPPED - 1] + ["..."]

    def betas(self, header: str | None) -> None:
        for beta in (header or "").split(","):
            beta = beta.strip()
            if beta and _BETA_DATE.sub("", beta) not in _BETAS:
                self.drop("beta:" + beta)

    # --- messages ---

    def collect_references(self, messages: list) -> None:
        """Tool names a ``tool_reference`` block loaded anywhere in the history."""
        for msg in messages:
            content = msg.get("content") if isinstance(msg, dict) else None
            for block in content if isinstance(content, list) else ():
                if not isinstance(block, dict) or block.get("type") != "tool_result":
                    continue
                inner = block.get("content")
                for part in inner if isinstance(inner, list) else ():
                    if isinstance(part, dict) and part.get("type") == "tool_reference" \
                            and isinstance(part.get("tool_name"), str):
                        self.referenced.add(part["tool_name"])

    def messages(self, messages: list) -> list[dict]:
        items: list[dict] = []
        for i, msg in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(msg, dict):
                raise bad_request(f"{where}: a message must be an object.", where)
            for key in msg:
                if key not in _MESSAGE_KEYS:
                    self.drop(f"messages.{key}")
            effort = self.effort(msg.get("output_config"), "messages.output_config")
            if effort is not None:
                self.message_effort = effort
            role = msg.get("role")
            content = msg.get("content")
            if not isinstance(content, (str, list)):
                raise bad_request(
                    f"{where}.content: a string or an array of content blocks is required.",
                    f"{where}.content")
            if role in ("system", "developer"):
                _append(items, "developer", self.text_parts(content))
            elif role == "user":
                self.user(content, items)
            elif role == "assistant":
                self.assistant(content, i, items)
            else:
                raise bad_request(
                    f"{where}.role: expected \"user\" or \"assistant\", got {repr(role)[:40]}.",
                    f"{where}.role")
        return items

    def text_parts(self, content) -> list[dict]:
        """System/developer content: text only (other blocks are reported)."""
        if isinstance(content, str):
            return [{"type": "input_text", "text": content}] if content else []
        parts = []
        for block in content:
            text = self.block_text(block)
            if text is not None:
                if text:
                    parts.append({"type": "input_text", "text": text})
            else:
                self.drop_block(block)
        return parts

    def block_text(self, block) -> str | None:
        if isinstance(block, str):
            return block
        if isinstance(block, dict) and block.get("type") == "text" \
                and isinstance(block.get("text"), str):
            return block["text"]
        return None

    def drop_block(self, block) -> None:
        kind = block.get("type") if isinstance(block, dict) else None
        self.drop("content." + (kind if isinstance(kind, str) and kind else "invalid"))

    def user(self, content, items: list) -> None:
        if isinstance(content, str):
            _append(items, "user", [{"type": "input_text", "text": content}] if content else [])
            return
        results: list[dict] = []
        parts: list[dict] = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                call_id = block.get("tool_use_id")
                output = self.tool_output(block)
                if isinstance(call_id, str) and call_id in self.calls:
                    results.append({"type": "function_call_output", "call_id": call_id,
                                    "output": output})
                else:  # no such call: the upstream would refuse the output
                    parts.extend(_orphan_parts(call_id, output))
                continue
            part = self.user_part(block)
            if part is not None:
                parts.extend(part)
        # Results in call order: parallel results arrive in completion order,
        # and the upstream reads them best right after their calls.
        results.sort(key=lambda r: self.calls[r["call_id"]])
        items.extend(results)
        _append(items, "user", parts)

    def user_part(self, block) -> list[dict] | None:
        """One user content block -> Responses input parts (None: dropped)."""
        if isinstance(block, str):
            return [{"type": "input_text", "text": block}] if block else []
        if not isinstance(block, dict):
            self.drop_block(block)
            return None
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                self.drop_block(block)
                return None
            return [{"type": "input_text", "text": text}] if text else []
        if kind == "image":
            part = self.image(block)
            return [part] if part is not None else None
        if kind == "document":
            return self.document(block)
        if kind == "search_result":
            return self.search_result(block)
        if kind == "tool_reference":
            name = block.get("tool_name")
            if isinstance(name, str) and name:
                return [{"type": "input_text", "text": f"Tool {name} is now available."}]
        self.drop_block(block)
        return None

    def image(self, block: dict) -> dict | None:
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        if kind == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") if isinstance(source.get("media_type"), str) else "image/png"
            url = f"data:{media};base64,{source['data']}"
            return {"type": "input_image", "image_url": url, "detail": "auto"}
        if kind == "url" and isinstance(source.get("url"), str) and source["url"]:
            return {"type": "input_image", "image_url": source["url"], "detail": "auto"}
        if kind == "file" and isinstance(source.get("file_id"), str):
            return {"type": "input_image", "file_id": source["file_id"], "detail": "auto"}
        self.drop("content.image.source")
        return None

    def document(self, block: dict) -> list[dict] | None:
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        title = block.get("title") if isinstance(block.get("title"), str) else None
        if kind == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") if isinstance(source.get("media_type"), str) \
                else "application/pdf"
            return [{"type": "input_file", "filename": title or _filename(media),
                     "file_data": f"data:{media};base64,{source['data']}"}]
        if kind == "text" and isinstance(source.get("data"), str):
            return [{"type": "input_text", "text": source["data"]}] if source["data"] else []
        if kind == "url" and isinstance(source.get("url"), str) and source["url"]:
            return [{"type": "input_file", "file_url": source["url"]}]
        if kind == "file" and isinstance(source.get("file_id"), str):
            return [{"type": "input_file", "file_id": source["file_id"]}]
        if kind == "content" and isinstance(source.get("content"), (str, list)):
            inner = source["content"]
            if isinstance(inner, str):
                return [{"type": "input_text", "text": inner}] if inner else []
            parts = []
            for part in inner:
                mapped = self.user_part(part)
                if mapped:
                    parts.extend(mapped)
            return parts
        self.drop("content.document.source")
        return None

    def search_result(self, block: dict) -> list[dict]:
        lines = [v for v in (block.get("title"), block.get("source")) if isinstance(v, str) and v]
        content = block.get("content")
        for part in content if isinstance(content, list) else ():
            text = self.block_text(part)
            if text:
                lines.append(text)
        return [{"type": "input_text", "text": "\n".join(lines)}] if lines else []

    def tool_output(self, block: dict):
        """``tool_result.content`` -> a string, or parts when there are images/files."""
        content = block.get("content")
        if content is None:
            output: str | list = ""
        elif isinstance(content, str):
            output = content
        elif isinstance(content, list):
            parts = []
            for part in content:
                mapped = self.user_part(part)
                if mapped:
                    parts.extend(mapped)
            if all(p["type"] == "input_text" for p in parts):
                output = "\n".join(p["text"] for p in parts) if len(parts) > 1 else \
                    (parts[0]["text"] if parts else "")
            else:
                output = parts
        else:
            self.drop("content.tool_result.content")
            output = ""
        if block.get("is_error") is True:  # Responses has no field for it
            if isinstance(output, str):
                output = "Error: " + output if output else "Error"
            else:
                output = [{"type": "input_text", "text": "Error:"}] + output
        return output

    def assistant(self, content, i: int, items: list) -> None:
        if isinstance(content, str):
            _append(items, "assistant", [{"type": "output_text", "text": content}] if content else [])
            return
        parts: list[dict] = []

        def flush() -> None:
            _append(items, "assistant", list(parts))
            parts.clear()

        for j, block in enumerate(content):
            text = self.block_text(block)
            if text is not None:
                if text:
                    parts.append({"type": "output_text", "text": text})
                continue
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "tool_use":
                name = block.get("name")
                if not isinstance(name, str) or not name:
                    self.drop("content.tool_use")
                    continue
                args = arguments_json(block.get("input"))
                call_id = block.get("id")
                if not isinstance(call_id, str) or not call_id:
                    call_id = stable_call_id(i, j, name, args)
                flush()
                self.calls.setdefault(call_id, len(self.calls))
                items.append({"type": "function_call", "call_id": call_id,
                              "name": self.names(name), "arguments": args})
            elif kind == "thinking":
                item = self.reasoning(block)
                if item is None:
                    self.drop("content.thinking")
                    continue
                flush()
                items.append(item)
            else:
                self.drop_block(block)
        flush()

    def reasoning(self, block: dict) -> dict | None:
        """A thinking block the gateway signed -> the reasoning item it came from."""
        decoded = decode_signature(block.get("signature"))
        if decoded is None or "encrypted_content" not in decoded:
            return None  # not ours, or nothing the upstream could replay
        item = {"type": "reasoning"}
        if "id" in decoded:
            item["id"] = decoded["id"]
        text = block.get("thinking")
        item["summary"] = [{"type": "summary_text", "text": text}] if isinstance(text, str) and text else []
        item["encrypted_content"] = decoded["encrypted_content"]
        return item

    # --- tools ---

    def tools(self, tools) -> list[dict]:
        if tools is None:
            return []
        if not isinstance(tools, list):
            self.drop("tools")
            return []
        out = []
        for tool in tools:
            if not isinstance(tool, dict):
                self.drop("tools.invalid")
                continue
            kind = tool.get("type")
            if kind in (None, "custom", "function"):
                self.unknown_keys(tool, _TOOL_KEYS)
                mapped = self.function_tool(tool)
                if mapped is not None:
                    out.append(mapped)
            elif isinstance(kind, str) and kind.startswith("web_search"):
                self.unknown_keys(tool, _WEB_SEARCH_KEYS)
                out.append(_web_search_tool(tool))
                self.web_search = True
            else:
                self.drop("tools." + (kind if isinstance(kind, str) else "invalid"))
        return out

    def unknown_keys(self, tool: dict, known: frozenset) -> None:
        for key in tool:
            if key not in known:
                self.drop(f"tools.{key}")

    def function_tool(self, tool: dict) -> dict | None:
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            self.drop("tools.invalid")
            return None
        if tool.get("defer_loading") is True and name not in self.referenced:
            return None  # not loaded yet: Anthropic would not show it to the model either
        schema = tool.get("input_schema")
        if isinstance(schema, dict):
            schema = {k: v for k, v in schema.items() if k != "$schema"}
        else:
            schema = dict(_EMPTY_SCHEMA)
        out = {"type": "function", "name": self.names(name)}
        if isinstance(tool.get("description"), str):
            out["description"] = tool["description"]
        out["parameters"] = schema
        # Non-strict unless asked: Claude tools have optional properties that
        # strict mode would refuse.
        out["strict"] = tool.get("strict") is True
        return out

    def tool_choice(self, choice, tools: list) -> tuple[object, bool]:
        """``(tool_choice or None, parallel_tool_calls)``."""
        if choice is None:
            return None, True
        if not isinstance(choice, dict):
            self.drop("tool_choice")
            return None, True
        parallel = choice.get("disable_parallel_tool_use") is not True
        kind = choice.get("type")
        names = {t["name"] for t in tools if t.get("type") == "function"}
        if kind == "auto":
            return ("auto" if tools else None), parallel
        if kind == "none":
            return ("none" if tools else None), parallel
        if kind == "any":
            if tools:
                return "required", parallel
        elif kind == "tool" and isinstance(choice.get("name"), str):
            short = self.names(choice["name"])
            if short in names:
                return {"type": "function", "name": short}, parallel
        self.drop("tool_choice")
        return None, parallel

    # --- parameters ---

    def thinking(self, thinking) -> tuple[bool, str | None] | None:
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
        self.drop("thinking")
        return None

    def effort(self, config, where: str) -> str | None:
        if config is None:
            return None
        if not isinstance(config, dict):
            self.drop(where)
            return None
        for key in config:
            if key not in ("effort", "format"):
                self.drop(f"{where}.{key}")
        if "format" in config and where != "output_config":
            self.drop(f"{where}.format")
        value = config.get("effort")
        if value is None:
            return None
        effort = _EFFORTS.get(value) if isinstance(value, str) else None
        if effort is None:
            self.drop(f"{where}.effort")
        return effort

    def output_format(self, body: dict) -> dict | None:
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
        self.drop(where)
        return None

    def stop_sequences(self, value) -> list[str]:
        stops, dropped = stop_list(value)
        if dropped:
            self.drop("stop_sequences")
        return stops


def _reasoning(t: _Translation, body: dict) -> tuple[dict, bool]:
    """``reasoning`` and whether thinking blocks are shown.

    Effort: the latest message-level ``output_config.effort`` (per-turn
    control), else the top-level one, else one picked from ``budget_tokens``.
    """
    thinking = t.thinking(body.get("thinking"))
    effort = t.effort(body.get("output_config"), "output_config")
    if t.message_effort is not None:
        effort = t.message_effort
    if effort is None and thinking is not None:
        effort = thinking[1]
    reasoning = {} if effort is None else {"effort": effort}
    show = thinking is not None and thinking[0] and effort != "none"
    if show:
        reasoning["summary"] = "auto"
    return reasoning, show


def _number(value, *, integer: bool = False) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, (int, float))


def _sampling(t: _Translation, body: dict, out: dict) -> dict[str, str]:
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


def _system_item(system, t: _Translation) -> dict | None:
    """``system`` -> one developer message, without the billing header."""
    if system is None:
        return None
    if isinstance(system, str):
        text = _strip_billing_line(system)
        return _message("developer", [{"type": "input_text", "text": text}]) if text else None
    if not isinstance(system, list):
        t.drop("system")
        return None
    parts = []
    for block in system:
        text = t.block_text(block)
        if text is None:
            t.drop_block(block)
        elif text and not text.lstrip().startswith(BILLING_PREFIX):
            parts.append({"type": "input_text", "text": text})
    return _message("developer", parts) if parts else None


def _strip_billing_line(text: str) -> str:
    if not text.lstrip().startswith(BILLING_PREFIX):
        return text
    _, _, rest = text.lstrip().partition("\n")
    return rest.lstrip("\n")


def _message(role: str, parts: list) -> dict:
    return {"type": "message", "role": role, "content": parts}


def _append(items: list, role: str, parts: list) -> None:
    if parts:  # an empty part list carries nothing and the upstream may refuse it
        items.append(_message(role, parts))


def _orphan_parts(call_id, output) -> list[dict]:
    head = f"Tool result ({call_id}):" if isinstance(call_id, str) and call_id else "Tool result:"
    if isinstance(output, str):
        return [{"type": "input_text", "text": f"{head}\n{output}" if output else head}]
    return [{"type": "input_text", "text": head}, *output]


def _filename(media_type: str) -> str:
    ext = media_type.rsplit("/", 1)[-1] if "/" in media_type else "bin"
    return f"document.{_UNSAFE.sub('', ext)[:8] or 'bin'}"


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
