"""gateway.dialects.chat.request
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Chat Completions request body -> Responses API request body.

Pure and deterministic: the same conversation always maps to the same
``input`` (generated call ids and shortened tool names are hashes, never
random), so the upstream prompt prefix stays cacheable turn after turn.

Parameter table (chat -> Responses):

=================================  =============================================
``messages``                       ``input`` items, in order
``tools`` (legacy ``functions``)   ``tools``, function tools flattened
``tool_choice`` (``function_call``) ``tool_choice``
``parallel_tool_calls``            copied only when sent
``reasoning_effort``               ``reasoning: {effort, summary: "auto"}``
``response_format``, ``verbosity`` ``text: {format, verbosity}``
``max_completion_tokens`` /
``max_tokens``                     ``max_output_tokens``
``temperature``, ``top_p``,
``metadata``, ``user``,
``service_tier``,
``safety_identifier``,
``prompt_cache_key``,
``prompt_cache_retention``         copied as-is (the upstream profile drops
                                   what its backend rejects)
``stream``, ``stream_options``     ``ChatRequest.stream`` / ``include_usage``
``stop``                           ``ChatRequest.stop`` (the stream translator
                                   enforces it)
``presence_penalty``,
``frequency_penalty``, ``seed``,
``logit_bias``, ``top_logprobs``
(0), ``prediction``,
``web_search_options``             dropped, listed in ``ChatRequest.dropped``
``n`` > 1, ``logprobs: true``,
``top_logprobs`` > 0, ``audio``,
audio ``modalities``               400: dropping them would change the answer
``store``, ``modalities: [text]``,
``n: 1``                           ignored (they change nothing)
any other field                    dropped, listed in ``ChatRequest.dropped``
=================================  =============================================

``stream``, ``store`` and ``include`` are never set here: the upstream profile
owns them (``gateway.upstream``), and the blueprint passes ``stream`` to the
executor.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field

from gateway.errors import bad_request
from gateway.dialects.tools import ToolNames, stable_call_id
from gateway.dialects.validate import check_retention, require_model

# Copied verbatim when present and not null.
_COPIED = (
    "temperature",
    "top_p",
    "metadata",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "parallel_tool_calls",
)
# No Responses equivalent; harmless to drop, so reported rather than refused.
_DROPPED = (
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logit_bias",
    "top_logprobs",
    "prediction",
    "web_search_options",
)
# Everything this module reads or deliberately ignores; any other field is reported.
_KNOWN = frozenset((
    "model", "messages", "stream", "stream_options", "stop", "n", "logprobs", "audio",
    "modalities", "store", "tools", "functions", "tool_choice", "function_call",
    "reasoning_effort", "response_format", "verbosity", "max_tokens", "max_completion_tokens",
    *_COPIED, *_DROPPED,
))
_TOOL_CHOICES = ("auto", "none", "required")
_COMPACT = (",", ":")


@dataclass(slots=True)
class ChatRequest:
    """A translated request plus what the response side needs to undo it."""

    responses: dict
    stream: bool = False
    include_usage: bool = False
    stop: list[str] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)  # shortened -> original
    param_aliases: dict[str, str] = field(default_factory=dict)  # responses -> chat name
    dropped: list[str] = field(default_factory=list)


def translate_request(body: dict, *, max_tool_name: int = 64) -> ChatRequest:
    """Map a Chat Completions body; raise a 400 ``GatewayError`` on bad input."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = require_model(body)
    check_retention(body)
    _refuse_lossy(body)

    names = ToolNames(max_tool_name)
    out: dict = {"model": model, "instructions": ""}
    aliases: dict[str, str] = {}

    tools = body.get("tools")
    if tools is None and body.get("functions") is not None:
        tools = [{"type": "function", "function": f} for f in _list(body["functions"], "functions")]
        aliases["tools"] = "functions"
    if tools is not None:
        out["tools"] = _tools(tools, names)

    choice = body.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice(choice, names, "tool_choice")
    elif body.get("function_call") is not None:
        legacy = body["function_call"]
        if isinstance(legacy, dict):
            legacy = {"type": "function", "function": legacy}
        out["tool_choice"] = _tool_choice(legacy, names, "function_call")
        aliases["tool_choice"] = "function_call"

    out["input"] = _input(body.get("messages"), names)

    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise bad_request("'reasoning_effort' must be a string.", "reasoning_effort")
        out["reasoning"] = {"effort": effort} if effort == "none" else {"effort": effort, "summary": "auto"}
        aliases["reasoning"] = "reasoning_effort"

    text = {}
    if body.get("response_format") is not None:
        text["format"] = _text_format(body["response_format"])
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
        aliases["text"] = "response_format" if "format" in text else "verbosity"

    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            out["max_output_tokens"] = body[key]
            aliases["max_output_tokens"] = key
            break

    for key in _COPIED:
        value = body.get(key)
        if value is not None:
            out[key] = value

    options = body.get("stream_options")
    return ChatRequest(
        responses=out,
        stream=bool(body.get("stream")),
        include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        stop=_stop(body.get("stop")),
        tool_names=names.restore,
        param_aliases=aliases,
        dropped=[key for key in _DROPPED if body.get(key) is not None]
        + [key for key in body if key not in _KNOWN],
    )


def _refuse_lossy(body: dict) -> None:
    """Refuse parameters whose silent loss would change what the client gets back."""
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_request("'n' must be 1: the upstream returns a single choice.", "n")
    if body.get("logprobs"):
        raise bad_request("'logprobs' are not supported by the upstream.", "logprobs")
    top = body.get("top_logprobs")
    if isinstance(top, (int, float)) and not isinstance(top, bool) and top > 0:
        raise bad_request("'top_logprobs' are not supported by the upstream.", "top_logprobs")
    if body.get("audio") is not None:
        raise bad_request("The upstream cannot produce audio output.", "audio")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise bad_request("The upstream cannot produce audio output.", "modalities")


def _list(value, param: str) -> list:
    if not isinstance(value, list):
        raise bad_request(f"'{param}' must be an array.", param)
    return value


def _stop(stop) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if len(stop) > 4:
            raise bad_request("'stop' may contain at most 4 sequences.", "stop")
        return [s for s in stop if s]
    raise bad_request("'stop' must be a string or an array of strings.", "stop")


# --- messages -----------------------------------------------------------------


def _input(messages, names: ToolNames) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", "messages")
    items: list[dict] = []
    pending: list[tuple[str, str]] = []  # (name, generated id) not yet answered
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise bad_request(f"'{where}' must be an object.", where)
        role = msg.get("role")
        if role in ("system", "developer"):
            _append_message(items, "developer", _text_parts(msg.get("content"), where, "input_text"))
        elif role == "user":
            _append_message(items, "user", _user_parts(msg.get("content"), where))
        elif role == "assistant":
            _assistant(msg, i, where, names, items, pending)
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                if not pending:  # a client that omitted ids may answer them in order
                    param = f"{where}.tool_call_id"
                    raise bad_request(f"'{param}' is required for tool messages.", param)
                call_id = pending.pop(0)[1]
            items.append(_call_output(call_id, msg.get("content"), where))
        elif role == "function":  # legacy: answers the last function_call of that name
            name = msg.get("name")
            if not isinstance(name, str) or not name:
                raise bad_request(f"'{where}.name' is required for function messages.", f"{where}.name")
            match = next((k for k, (n, _) in enumerate(pending) if n == name), None)
            call_id = pending.pop(match)[1] if match is not None else stable_call_id(i, 0, name, "")
            items.append(_call_output(call_id, msg.get("content"), where))
        else:
            raise bad_request(
                f"'{where}.role' must be one of system, developer, user, assistant, tool (got {role!r}).",
                f"{where}.role",
            )
    return items


def _append_message(items: list, role: str, parts: list) -> None:
    if parts:  # an empty part list carries nothing and the upstream may reject it
        items.append({"type": "message", "role": role, "content": parts})


def _content_error(where: str):
    return bad_request(f"'{where}.content' must be a string or an array of content parts.",
                       f"{where}.content")


def _text_parts(content, where: str, kind: str, *, optional: bool = False) -> list[dict]:
    """String or text/refusal parts -> ``input_text``/``output_text`` parts."""
    if isinstance(content, str):
        return [{"type": kind, "text": content}]
    if content is None and optional:
        return []
    if not isinstance(content, list):
        raise _content_error(where)
    parts = []
    for j, part in enumerate(content):
        text = None
        if isinstance(part, dict):
            ptype = part.get("type")
            if ptype in ("text", "input_text", "output_text"):
                text = part.get("text")
            elif ptype == "refusal":
                text = part.get("refusal")
        elif isinstance(part, str):
            text = part
        if not isinstance(text, str):
            raise bad_request(f"'{where}.content[{j}]' must be a text part.", f"{where}.content[{j}]")
        parts.append({"type": kind, "text": text})
    return parts


def _user_parts(content, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise _content_error(where)
    return [_user_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _user_part(part, where: str) -> dict:
    """One user (or tool output) content part -> a Responses input part."""
    if isinstance(part, str):
        return {"type": "input_text", "text": part}
    if not isinstance(part, dict):
        raise bad_request(f"'{where}' must be a content part object.", where)
    ptype = part.get("type")
    if ptype == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise bad_request(f"'{where}.text' must be a string.", f"{where}.text")
        return {"type": "input_text", "text": text}
    if ptype == "image_url":
        image = part.get("image_url")
        url, detail = (image, None) if isinstance(image, str) else (
            (image.get("url"), image.get("detail")) if isinstance(image, dict) else (None, None)
        )
        if not isinstance(url, str) or not url:
            raise bad_request(f"'{where}.image_url.url' must be a non-empty string.", f"{where}.image_url")
        return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
    if ptype == "file":
        spec = part.get("file")
        if not isinstance(spec, dict):
            raise bad_request(f"'{where}.file' must be an object.", f"{where}.file")
        out = {"type": "input_file"}
        for key in ("file_data", "file_id", "filename"):
            if isinstance(spec.get(key), str):
                out[key] = spec[key]
        if "file_data" not in out and "file_id" not in out:
            raise bad_request(f"'{where}.file' needs file_data or file_id.", f"{where}.file")
        return out
    if ptype == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            raise bad_request(f"'{where}.input_audio' needs data and format.", f"{where}.input_audio")
        return {"type": "input_audio", "input_audio": {"data": audio["data"], "format": audio.get("format")}}
    if ptype in ("input_text", "input_image", "input_file"):
        return part  # already Responses-shaped
    raise bad_request(f"'{where}.type' {ptype!r} is not a supported content part type.", f"{where}.type")


def _call_output(call_id: str, content, where: str) -> dict:
    return {"type": "function_call_output", "call_id": call_id, "output": _tool_output(content, where)}


def _tool_output(content, where: str):
    """Tool results: a string; text parts are joined, images keep the list form."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _content_error(where)
    parts = [_user_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    if all(p["type"] == "input_text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _arguments(value) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, separators=_COMPACT)


def _assistant(msg: dict, i: int, where: str, names: ToolNames, items: list, pending: list) -> None:
    parts = _text_parts(msg.get("content"), where, "output_text", optional=True)
    if any(p["text"] for p in parts):
        items.append({"type": "message", "role": "assistant", "content": parts})
    calls = msg.get("tool_calls")
    calls = [] if calls is None else _list(calls, f"{where}.tool_calls")
    for j, call in enumerate(calls):
        cw = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise bad_request(f"'{cw}' must be an object.", cw)
        custom = call.get("type") == "custom"
        spec = call.get("custom" if custom else "function")
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not name:
            raise bad_request(f"'{cw}.function.name' must be a non-empty string.", f"{cw}.function.name")
        args = _arguments(spec.get("input" if custom else "arguments"))
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = stable_call_id(i, j, name, args)
            pending.append((name, call_id))
        if custom:
            items.append({"type": "custom_tool_call", "call_id": call_id, "name": names(name), "input": args})
        else:
            items.append({"type": "function_call", "call_id": call_id, "name": names(name), "arguments": args})
    legacy = msg.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str) and legacy["name"]:
        name, args = legacy["name"], _arguments(legacy.get("arguments"))
        call_id = stable_call_id(i, len(calls), name, args)
        pending.append((name, call_id))
        items.append({"type": "function_call", "call_id": call_id, "name": names(name), "arguments": args})


# --- tools, tool_choice, response_format ----------------------------------------


def _tools(tools, names: ToolNames) -> list[dict]:
    out = []
    for k, tool in enumerate(_list(tools, "tools")):
        where = f"tools[{k}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad_request(f"'{where}' must be an object with a string type.", where)
        ttype = tool["type"]
        if ttype == "function":
            out.append(_function_tool(tool, where, names))
        elif ttype == "custom" and isinstance(tool.get("custom"), dict):
            spec = dict(tool["custom"])
            if not isinstance(spec.get("name"), str) or not spec["name"]:
                raise bad_request(f"'{where}.custom.name' must be a non-empty string.", f"{where}.custom.name")
            spec["name"] = names(spec["name"])
            out.append({"type": "custom", **spec})
        else:
            out.append(tool)  # built-ins (web_search, …) and Responses-shaped tools
    return out


def _function_tool(tool: dict, where: str, names: ToolNames) -> dict:
    """Flatten a chat function tool.

    ``strict`` defaults to False when absent: Chat Completions functions are
    non-strict by default while Responses ones are strict unless told
    otherwise, and a non-strict schema under strict mode would be rejected.
    """
    spec = tool.get("function")
    if spec is None and "name" in tool:
        spec = tool  # already flat (Responses-shaped)
    if not isinstance(spec, dict):
        raise bad_request(f"'{where}.function' must be an object.", f"{where}.function")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request(f"'{where}.function.name' must be a non-empty string.", f"{where}.function.name")
    params = spec.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise bad_request(f"'{where}.function.parameters' must be a JSON Schema object.", f"{where}.function.parameters")
    out = {"type": "function", "name": names(name)}
    if isinstance(spec.get("description"), str):
        out["description"] = spec["description"]
    out["parameters"] = params if params is not None else {"type": "object", "properties": {}}
    strict = spec.get("strict")
    out["strict"] = strict if isinstance(strict, bool) else False
    return out


def _tool_ref(ref, names: ToolNames):
    """``{"type":"function","function":{"name":X}}`` (or flat) -> flat, shortened name."""
    if not isinstance(ref, dict):
        return None
    kind = ref.get("type")
    if kind in ("function", "custom"):
        spec = ref.get(kind)
        name = spec.get("name") if isinstance(spec, dict) else ref.get("name")
        return {"type": kind, "name": names(name)} if isinstance(name, str) and name else None
    return ref if isinstance(kind, str) else None


def _tool_choice(choice, names: ToolNames, param: str):
    if choice in _TOOL_CHOICES:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        spec = choice.get("allowed_tools")
        spec = spec if isinstance(spec, dict) else choice
        refs = [_tool_ref(t, names) for t in spec.get("tools") or ()]
        if refs and None not in refs and spec.get("mode") in ("auto", "required"):
            return {"type": "allowed_tools", "mode": spec["mode"], "tools": refs}
    else:
        ref = _tool_ref(choice, names)
        if ref is not None:
            return ref
    raise bad_request(
        f"'{param}' must be \"auto\", \"none\", \"required\" or "
        f'{{"type": "function", "function": {{"name": ...}}}}.',
        param,
    )


def _text_format(fmt) -> dict:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise bad_request("'response_format.json_schema.name' is required.", "response_format.json_schema")
        out = {"type": "json_schema", "name": spec["name"]}
        if spec.get("schema") is not None:
            if not isinstance(spec["schema"], dict):
                param = "response_format.json_schema.schema"
                raise bad_request(f"'{param}' must be an object.", param)
            out["schema"] = spec["schema"]
        for key in ("strict", "description"):
            if spec.get(key) is not None:
                out[key] = spec[key]
        return out
    raise bad_request("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\".",
                      "response_format")
