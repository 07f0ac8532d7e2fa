"""gateway.dialects.gemini.request
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Gemini ``generateContent`` request (model from the path) -> one Responses request.

Pure and deterministic, like the Messages dialect: the same conversation maps
to the same ``input`` every turn (generated call ids and shortened names are
hashes), so the upstream prompt prefix stays cacheable. Gemini CLI sends no
session id, so continuity comes from that prefix (``conversation``).

**Both spellings.** Gemini CLI sends camelCase; google-genai sends snake_case
inside ``thinkingConfig``; Google's parser takes either everywhere, and so does
this module, for every field name it reads (never inside schemas, ``args`` or
``response`` objects: those are the client's data).

**Never a 400 for something unknown.** Fields, parts and tools without an
equivalent are dropped and named in ``GeminiRequest.dropped`` (the
``x-gateway-dropped-params`` header). Only what cannot be served is a 400:
a body that is not an object, ``contents`` not a non-empty list, a content
or part that is not an object, ``parts`` not a list, an unknown role.

Mapping table (Gemini -> Responses):

===============================  =================================================
``systemInstruction``            one leading ``developer`` message (text parts)
``contents`` role ``user``       a ``user`` message (``function``, or no role: user)
role ``model``                   ``assistant`` message parts and items, in order
``text``                         ``input_text`` / ``output_text``
``inlineData`` image/*           ``input_image`` (data URL)
``inlineData`` text/*, JSON      ``input_text`` (the decoded text)
``inlineData`` other (PDF …)     ``input_file`` (data URL, a ``document.<ext>`` name)
``fileData`` http(s) URL         ``input_image`` (image/*) or ``input_file`` URL;
                                 other URIs (``gs://``) dropped
``functionCall``                 ``function_call`` (``call_id`` = id, compact JSON
                                 args); no id: a stable hash
``functionResponse``             ``function_call_output`` matched by id, else by
                                 name to the oldest open call; ``{"output": s}``
                                 -> s, ``{"error": s}`` -> ``Error: s``, anything
                                 else compact JSON; its ``parts`` (images, files)
                                 join the output; a second answer to the same call
                                 (Gemini CLI 0.61 repeats it after ``--resume``) is
                                 dropped; an answer to no call becomes user text
``thoughtSignature`` the         a ``reasoning`` item (id, ``encrypted_content``)
gateway issued (any part)        before the part's own item, once per item; the
                                 ``thought: true`` texts before it are its summary
other ``thought`` parts         dropped (the model's own summaries: nothing to replay)
foreign signatures               dropped and reported (Gemini CLI's
                                 ``skip_thought_signature_validator`` silently)
``tools.functionDeclarations``   function tools; ``parametersJsonSchema`` or
                                 ``parameters`` -> JSON Schema (:mod:`.schema`),
                                 ``strict`` false
``googleSearch``,                dropped and reported (``tools.<name>``)
``codeExecution``, ``urlContext``
…
``toolConfig.functionCalling     AUTO -> auto, NONE -> none, ANY -> required;
Config``                         ``allowedFunctionNames``: one name under ANY ->
                                 that function, else ``allowed_tools``
``thinkingConfig``               ``includeThoughts`` -> summaries requested, shown
                                 as ``thought: true`` parts; ``thinkingLevel``
                                 MINIMAL/LOW -> low, MEDIUM, HIGH; ``thinkingBudget``
                                 0..4095 -> low, ..16383 -> medium, more -> high,
                                 -1 (dynamic) -> the model's default
``maxOutputTokens``              ``max_output_tokens``
``temperature``, ``topP``        ``temperature``, ``top_p`` (the profile drops them
                                 where the backend refuses them)
``stopSequences``                emulated on the output (``GeminiRequest.stop``)
``responseMimeType`` JSON with   ``text.format`` ``json_schema``; without a schema
``responseSchema`` /             ``json_object``; ``text/plain`` is the default
``responseJsonSchema``
``topK``, ``seed``, penalties,   dropped and reported
``candidateCount`` > 1 …
``safetySettings``,              dropped and reported
``cachedContent``, ``labels``
===============================  =================================================

Names in ``dropped`` are dotted camelCase paths (``generationConfig.topK``,
``contents.parts.executableCode``, ``tools.googleSearch``), at most 32.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.errors import bad_request
from gateway.dialects.dropped import UNSAFE, Dropped
from gateway.dialects.stops import stop_list
# The arguments' stable bytes are the Messages dialect's (one rule for every dialect).
from gateway.dialects.tools import EMPTY_SCHEMA, ToolNames, arguments_json, stable_call_id

from .schema import json_schema
from .signature import decode_thought_signature

ENCRYPTED_REASONING = "reasoning.encrypted_content"
SKIP_SIGNATURE = "skip_thought_signature_validator"

_TOP = frozenset(("contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                  "model"))
_GENERATION = frozenset(("thinkingConfig", "maxOutputTokens", "temperature", "topP",
                         "stopSequences", "responseMimeType", "responseSchema",
                         "responseJsonSchema", "candidateCount", "responseModalities"))
_THINKING = frozenset(("includeThoughts", "thinkingBudget", "thinkingLevel"))
_DECLARATION = frozenset(("name", "description", "parameters", "parametersJsonSchema"))
_LEVELS = {"MINIMAL": "low", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
_MODES = {"AUTO": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none"}
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-yaml")


@dataclass(slots=True)
class GeminiRequest:
    """A translated request plus what the answer side needs to undo it."""

    responses: dict
    model: str
    thoughts: bool = False  # show reasoning summaries as thought parts
    stop: list[str] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)  # shortened -> original
    param_aliases: dict[str, str] = field(default_factory=dict)  # responses -> client name
    dropped: list[str] = field(default_factory=list)


def camel(name: str) -> str:
    """``include_thoughts`` -> ``includeThoughts`` (camelCase stays as it is)."""
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def fields(obj) -> dict:
    """An object's fields under their camelCase names (either spelling accepted;
    camelCase wins when a client sends both)."""
    if not isinstance(obj, dict):
        return {}
    out = {}
    for key, value in obj.items():
        if isinstance(key, str):
            name = camel(key)
            if name not in out or name == key:
                out[name] = value
    return out


def translate_request(body, model: str, *, max_tool_name: int = 64) -> GeminiRequest:
    """Map a ``generateContent`` body for *model*; a 400 only for what cannot be served."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("Missing required parameter: 'model'.", param="model")
    top = fields(body)
    contents = top.get("contents")
    if not isinstance(contents, list) or not contents:
        raise bad_request("'contents' must be a non-empty array of Content objects.",
                          param="contents")
    t = _Translation(max_tool_name)
    out: dict = {"model": model, "instructions": ""}
    system = t.system(top.get("systemInstruction"))
    out["input"] = ([system] if system else []) + t.contents(contents)
    tools = t.tools(top.get("tools"))
    if tools:
        out["tools"] = tools
        choice = t.tool_choice(top.get("toolConfig"), tools)
        if choice is not None:
            out["tool_choice"] = choice
    elif top.get("toolConfig") is not None:
        t.drop("toolConfig")
    config = fields(top.get("generationConfig"))
    if top.get("generationConfig") is not None and not isinstance(
            top.get("generationConfig"), dict):
        t.drop("generationConfig")
    reasoning, thoughts = t.reasoning(config.get("thinkingConfig"))
    if reasoning:
        out["reasoning"] = reasoning
    out["include"] = [ENCRYPTED_REASONING]
    fmt = t.text_format(config)
    if fmt is not None:
        out["text"] = {"format": fmt}
    aliases = t.sampling(config, out)
    stop = t.stop_sequences(config.get("stopSequences"))
    for key in config:
        if key not in _GENERATION:
            t.drop("generationConfig." + key)
    for key in top:
        if key not in _TOP:
            t.drop(key)
    return GeminiRequest(responses=out, model=model, thoughts=thoughts, stop=stop,
                         tool_names=t.names.restore, param_aliases=aliases,
                         dropped=t.reported())


def client_authorization(headers: Mapping, query_key: str | None) -> str | None:
    """The client's key as an ``Authorization`` value for the key check.

    ``x-goog-api-key`` (Gemini CLI, the SDKs), then ``?key=`` (curl examples,
    older clients), then ``Authorization`` itself (Gemini CLI with
    ``GEMINI_API_KEY_AUTH_MECHANISM=bearer``). The query key is read here and
    nowhere else: it is never logged or echoed.
    """
    key = headers.get("x-goog-api-key")
    if isinstance(key, str) and key.strip():
        return "Bearer " + key.strip()
    if isinstance(query_key, str) and query_key.strip():
        return "Bearer " + query_key.strip()
    return headers.get("Authorization")


class _Translation(Dropped):
    """State of one translation: tool names, open calls, reasoning seen, drops."""

    def __init__(self, max_tool_name: int) -> None:
        super().__init__()
        self.names = ToolNames(max_tool_name)
        self.open_calls: list[tuple[str, str]] = []  # (call_id, name) not yet answered
        self.answered: set[str] = set()
        self.reasoned: set[str] = set()  # reasoning items already placed (by id or content)

    # --- contents ---

    def system(self, value) -> dict | None:
        if value is None:
            return None
        if isinstance(value, str):
            parts = [{"type": "input_text", "text": value}] if value else []
        elif isinstance(value, dict):
            parts = []
            for part in _parts(fields(value).get("parts"), "systemInstruction"):
                p = fields(part)
                if isinstance(p.get("text"), str) and not p.get("thought"):
                    if p["text"]:
                        parts.append({"type": "input_text", "text": p["text"]})
                else:
                    self.drop("systemInstruction.parts." + _kind(p))
        else:
            self.drop("systemInstruction")
            return None
        return _message("developer", parts) if parts else None

    def contents(self, contents: list) -> list[dict]:
        items: list[dict] = []
        for i, content in enumerate(contents):
            if not isinstance(content, dict):
                raise bad_request(f"'contents[{i}]' must be a Content object.", param="contents")
            c = fields(content)
            role = c.get("role", "user")
            parts = _parts(c.get("parts"), f"contents[{i}].parts")
            for key in c:
                if key not in ("role", "parts"):
                    self.drop("contents." + key)
            if role in ("user", "function", None, ""):
                self.user(parts, items)
            elif role == "model":
                self.model(parts, i, items)
            else:
                raise bad_request(f"'contents[{i}].role' must be 'user' or 'model', not "
                                  f"{str(role)[:40]!r}.", param="contents")
        return items

    def user(self, parts: list, items: list) -> None:
        content: list[dict] = []

        def flush() -> None:
            if content:
                items.append(_message("user", list(content)))
                content.clear()

        for raw in parts:
            p = fields(raw)
            if "functionResponse" in p:
                output = self.function_output(p["functionResponse"])
                if output is not None:
                    if output.get("type") == "function_call_output":
                        flush()
                        items.append(output)
                    else:
                        content.extend(output["content"])
                continue
            mapped = self.media(p)
            if mapped is not None:
                content.extend(mapped)
            elif not p.get("thought"):
                self.drop("contents.parts." + _kind(p))
        flush()

    def media(self, p: dict) -> list[dict] | None:
        """A text, ``inlineData`` or ``fileData`` part as user content parts; None
        when the part is none of those (or a thought)."""
        if p.get("thought"):
            return None
        if isinstance(p.get("text"), str):
            return [{"type": "input_text", "text": p["text"]}] if p["text"] else []
        if "inlineData" in p:
            return self.inline(fields(p["inlineData"]))
        if "fileData" in p:
            return self.file(fields(p["fileData"]))
        return None

    def inline(self, blob: dict) -> list[dict]:
        mime, data = blob.get("mimeType"), blob.get("data")
        if not isinstance(mime, str) or not isinstance(data, str) or not data:
            self.drop("contents.parts.inlineData")
            return []
        mime = mime.strip().lower()
        if mime.startswith("image/"):
            return [{"type": "input_image", "image_url": f"data:{mime};base64,{data}"}]
        if mime.startswith(_TEXT_TYPES):
            try:
                text = base64.b64decode(data, validate=False).decode("utf-8")
            except (binascii.Error, ValueError):
                self.drop("contents.parts.inlineData")
                return []
            return [{"type": "input_text", "text": text}] if text else []
        if mime.startswith(("audio/", "video/")):
            self.drop("contents.parts.inlineData." + mime.split("/")[0])
            return []
        return [{"type": "input_file", "filename": _filename(mime),
                 "file_data": f"data:{mime};base64,{data}"}]

    def file(self, ref: dict) -> list[dict]:
        uri, mime = ref.get("fileUri"), ref.get("mimeType")
        if not isinstance(uri, str) or not uri.lower().startswith(("https://", "http://")):
            self.drop("contents.parts.fileData")
            return []
        if isinstance(mime, str) and mime.lower().startswith("image/"):
            return [{"type": "input_image", "image_url": uri}]
        return [{"type": "input_file", "file_url": uri}]

    def function_output(self, value) -> dict | None:
        """A ``functionResponse`` -> a ``function_call_output`` item, or (answering
        no known call) ``{"content": parts}`` for the user message; None if dropped."""
        r = fields(value)
        name, call_id = r.get("name"), r.get("id")
        if isinstance(call_id, str) and call_id in self.answered:
            self.drop("contents.parts.functionResponse.duplicate")
            return None
        output = _output_text(r.get("response"))
        extra = []
        for part in r.get("parts") if isinstance(r.get("parts"), list) else ():
            extra += self.media(fields(part)) or []
        if extra:
            output = [{"type": "input_text", "text": output}, *extra]
        match = self.match_call(call_id, name)
        if match is None:
            head = f"Tool result ({name}):" if isinstance(name, str) and name else "Tool result:"
            text = [{"type": "input_text", "text": f"{head}\n{output}"}] \
                if isinstance(output, str) else [{"type": "input_text", "text": head}, *output]
            return {"content": text}
        self.answered.add(match)
        return {"type": "function_call_output", "call_id": match, "output": output}

    def match_call(self, call_id, name) -> str | None:
        """The open call this answer belongs to: by id, else the oldest of that name."""
        for k, (cid, cname) in enumerate(self.open_calls):
            if (isinstance(call_id, str) and call_id and cid == call_id) or (
                    not (isinstance(call_id, str) and call_id) and cname == name):
                del self.open_calls[k]
                return cid
        return None

    def model(self, parts: list, i: int, items: list) -> None:
        content: list[dict] = []
        thoughts: list[str] = []

        def flush() -> None:
            if content:
                items.append(_message("assistant", list(content)))
                content.clear()

        for j, raw in enumerate(parts):
            p = fields(raw)
            reasoning = self.reasoning_item(p.get("thoughtSignature"), thoughts)
            if reasoning is not None:
                flush()
                items.append(reasoning)
            if p.get("thought"):
                if isinstance(p.get("text"), str) and p["text"]:
                    thoughts.append(p["text"])  # the summary of the next signed part
                continue
            if isinstance(p.get("text"), str):
                if p["text"]:
                    content.append({"type": "output_text", "text": p["text"]})
            elif "functionCall" in p:
                call = self.function_call(fields(p["functionCall"]), i, j)
                if call is not None:
                    flush()
                    items.append(call)
            else:
                self.drop("contents.parts." + _kind(p))
        flush()

    def reasoning_item(self, signature, thoughts: list[str]) -> dict | None:
        """A signature the gateway issued -> its reasoning item, once per conversation."""
        decoded = decode_thought_signature(signature)
        if decoded is None or "encrypted_content" not in decoded:
            if isinstance(signature, str) and signature and signature != SKIP_SIGNATURE:
                self.drop("contents.parts.thoughtSignature")
            return None
        seen = decoded.get("id") or decoded["encrypted_content"]
        if seen in self.reasoned:
            return None
        self.reasoned.add(seen)
        item: dict = {"type": "reasoning"}
        if "id" in decoded:
            item["id"] = decoded["id"]
        item["summary"] = [{"type": "summary_text", "text": t} for t in thoughts]
        thoughts.clear()
        item["encrypted_content"] = decoded["encrypted_content"]
        return item

    def function_call(self, call: dict, i: int, j: int) -> dict | None:
        name = call.get("name")
        if not isinstance(name, str) or not name:
            self.drop("contents.parts.functionCall")
            return None
        args = arguments_json(call.get("args"))
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = stable_call_id(i, j, name, args)
        self.open_calls.append((call_id, name))
        return {"type": "function_call", "call_id": call_id, "name": self.names(name),
                "arguments": args}

    # --- tools ---

    def tools(self, tools) -> list[dict]:
        out = []
        for tool in self.listed(tools, "tools"):
            for key, value in fields(tool).items():
                if key != "functionDeclarations":
                    self.drop("tools." + key)  # googleSearch, codeExecution, urlContext …
                    continue
                for decl in value if isinstance(value, list) else ():
                    mapped = self.declaration(fields(decl))
                    if mapped is not None:
                        out.append(mapped)
            if not isinstance(tool, dict):
                self.drop("tools.invalid")
        return out

    def declaration(self, decl: dict) -> dict | None:
        name = decl.get("name")
        if not isinstance(name, str) or not name:
            self.drop("tools.functionDeclarations.invalid")
            return None
        for key in decl:
            if key not in _DECLARATION:
                self.drop("tools.functionDeclarations." + key)
        schema = decl.get("parametersJsonSchema")
        if not isinstance(schema, dict):
            schema = decl.get("parameters")
        schema = json_schema(schema) if isinstance(schema, dict) else dict(EMPTY_SCHEMA)
        out = {"type": "function", "name": self.names(name)}
        if isinstance(decl.get("description"), str):
            out["description"] = decl["description"]
        out["parameters"] = schema
        out["strict"] = False  # Gemini declarations have optional properties
        return out

    def tool_choice(self, value, tools: list):
        config = fields(fields(value).get("functionCallingConfig"))
        for key in fields(value):
            if key != "functionCallingConfig":
                self.drop("toolConfig." + key)
        mode = config.get("mode")
        if mode is None and not config.get("allowedFunctionNames"):
            return None
        choice = _MODES.get(mode.upper() if isinstance(mode, str) else "AUTO" if mode is None
                            else "")
        if choice is None:
            self.drop("toolConfig.functionCallingConfig.mode")
            return None
        allowed = config.get("allowedFunctionNames")
        if not isinstance(allowed, list) or not allowed or choice == "none":
            return choice
        names = {t["name"] for t in tools}
        wanted = [self.names(n) for n in allowed if isinstance(n, str)]
        wanted = [n for n in dict.fromkeys(wanted) if n in names]
        if not wanted:
            self.drop("toolConfig.functionCallingConfig.allowedFunctionNames")
            return choice
        if choice == "required" and len(wanted) == 1:
            return {"type": "function", "name": wanted[0]}
        return {"type": "allowed_tools", "mode": choice,
                "tools": [{"type": "function", "name": n} for n in wanted]}

    # --- generationConfig ---

    def reasoning(self, value) -> tuple[dict, bool]:
        """``reasoning`` and whether thought parts are shown."""
        if value is None:
            return {}, False
        config = fields(value)
        for key in config:
            if key not in _THINKING:
                self.drop("generationConfig.thinkingConfig." + key)
        effort = None
        level, budget = config.get("thinkingLevel"), config.get("thinkingBudget")
        if level is not None:
            effort = _LEVELS.get(level.upper()) if isinstance(level, str) else None
            if effort is None and level != "THINKING_LEVEL_UNSPECIFIED":
                self.drop("generationConfig.thinkingConfig.thinkingLevel")
        elif budget is not None:
            if _number(budget, integer=True) and budget >= -1:
                effort = None if budget == -1 else \
                    "low" if budget < 4096 else "medium" if budget < 16384 else "high"
            else:
                self.drop("generationConfig.thinkingConfig.thinkingBudget")
        reasoning = {"effort": effort} if effort else {}
        show = config.get("includeThoughts") is True
        if show:
            reasoning["summary"] = "auto"
        return reasoning, show

    def text_format(self, config: dict) -> dict | None:
        mime = config.get("responseMimeType")
        schema = config.get("responseJsonSchema")
        if not isinstance(schema, dict):
            schema = config.get("responseSchema")
        if mime is None or mime == "text/plain":
            if schema is not None:
                self.drop("generationConfig.responseSchema")
            return None
        if mime != "application/json":
            self.drop("generationConfig.responseMimeType")
            return None
        if not isinstance(schema, dict):
            return {"type": "json_object"}
        return {"type": "json_schema", "name": "output", "schema": json_schema(schema)}

    def sampling(self, config: dict, out: dict) -> dict[str, str]:
        aliases = {}
        for name, target in (("maxOutputTokens", "max_output_tokens"),
                             ("temperature", "temperature"), ("topP", "top_p")):
            value = config.get(name)
            if value is None:
                continue
            ok = _number(value, integer=name == "maxOutputTokens")
            if ok and (name != "maxOutputTokens" or value > 0):
                out[target] = value
                aliases[target] = "generationConfig." + name
            else:
                self.drop("generationConfig." + name)
        count = config.get("candidateCount")
        if count is not None and count != 1:
            self.drop("generationConfig.candidateCount")
        modalities = config.get("responseModalities")
        if modalities is not None and modalities not in (["TEXT"], ["text"], []):
            self.drop("generationConfig.responseModalities")
        return aliases

    def stop_sequences(self, value) -> list[str]:
        stops, dropped = stop_list(value)
        if dropped:
            self.drop("generationConfig.stopSequences")
        return stops


def _parts(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise bad_request(f"'{where}' must be an array of Part objects.", param="contents")
    return value


def _kind(part: dict) -> str:
    """A part's kind for the dropped list: its first field that is not metadata."""
    for key in part:
        if key not in ("thought", "thoughtSignature", "partMetadata", "videoMetadata"):
            return key
    return "empty"


def _output_text(response) -> str:
    """``functionResponse.response`` as the tool output the model reads."""
    if isinstance(response, dict):
        if set(response) == {"output"} and isinstance(response["output"], str):
            return response["output"]
        if set(response) == {"error"} and isinstance(response["error"], str):
            return "Error: " + response["error"]
    if response is None:
        return ""
    return arguments_json(response)


def _number(value, *, integer: bool = False) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, (int, float))


def _message(role: str, parts: list) -> dict:
    return {"type": "message", "role": role, "content": parts}


def _filename(mime: str) -> str:
    ext = mime.rsplit("/", 1)[-1] if "/" in mime else "bin"
    return f"document.{UNSAFE.sub('', ext)[:8] or 'bin'}"
