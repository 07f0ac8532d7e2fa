"""tests.fakes.codex_upstream
~~~~~~~~~~~~~~~~~~~~~~~~~~~
A fake of the ChatGPT Codex backend (``POST /backend-api/codex/responses``)
and of the OpenAI Responses API (``POST /v1/responses``) on one server.

It is strict where the real backend is strict (``stream``/``store`` values,
unsupported parameters, bearer and ``chatgpt-account-id``), streams the same
SSE events, and models prompt caching deterministically so tests can assert
on ``cached_tokens``:

* the prompt is the canonical string ``S = json.dumps(instructions) +
  json.dumps(tools, sort_keys=True) + "".join(json.dumps(item, sort_keys=True)
  for item in input)`` and counts ``ceil(len(S) / 4)`` input tokens;
* the cache holds the last ``S`` per key ``(flavour, account,
  prompt_cache_key, session header)``; a request is credited the common
  character prefix with that ``S`` (in tokens, floored), if at least 1024
  tokens, rounded down to a multiple of 128 and kept below its input tokens.

Faults are queued (``inject`` or ``POST /_fake/faults``) and consumed in FIFO
order by the next matching request; every request is recorded and readable
through ``requests`` or ``GET /_fake/requests``.

Run standalone with ``python -m tests.fakes.codex_upstream --port 18001 [--fast]``.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import time
from dataclasses import dataclass, field

from tests.fakes.jwt import read_claims
from tests.fakes.server import BadRequest, FakeServer

CODEX_PATH = "/backend-api/codex/responses"
OPENAI_PATH = "/v1/responses"
DEFAULT_REPLY = "Hello from the fake upstream."
DEFAULT_MODELS = ("gpt-5-codex", "gpt-5", "gpt-5-codex-mini")
DEFAULT_UNSUPPORTED = frozenset({
    "prompt_cache_retention", "max_output_tokens", "max_completion_tokens", "max_tokens",
    "temperature", "top_p", "metadata", "previous_response_id", "user", "safety_identifier",
    "truncation", "stream_options", "prompt_cache_options",
})
RETENTION_VALUES = ("in_memory", "24h")
MIN_CACHED_TOKENS = 1024
CACHE_STEP = 128
REASONING_TOKENS = 64
REASONING_SUMMARY = "**Considering the request**\n\nWorking out a short answer."
HTTP_FAULTS = frozenset({"http_500", "http_401", "usage_limit", "http_429", "http_400_unsupported"})
STREAM_FAULTS = frozenset({"stall", "reset_mid_stream", "response_failed", "error_event", "truncate"})
FAULTS = HTTP_FAULTS | STREAM_FAULTS
CONFIG_KEYS = ("reply", "event_delay", "silence", "fast", "strict_tokens", "unsupported_params")


class UpstreamError(Exception):
    """An answer that is an HTTP error instead of a stream."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


# -- prompt-cache model -------------------------------------------------------

def prompt_text(body: dict) -> str:
    """The canonical prefix string S that cache hits are measured on."""
    return (json.dumps(body.get("instructions"))
            + json.dumps(body.get("tools"), sort_keys=True)
            + "".join(json.dumps(item, sort_keys=True) for item in body["input"]))


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def cached_tokens(previous: str | None, current: str, input_tokens: int) -> int:
    """Tokens of *current* served from cache after *previous* under the same key."""
    if not previous:
        return 0
    common = min(len(os.path.commonprefix([previous, current])) // 4, input_tokens - 1)
    return common // CACHE_STEP * CACHE_STEP if common >= MIN_CACHED_TOKENS else 0


# -- what the answer says -----------------------------------------------------

_SAY = re.compile(r"\[\[say:(.*?)\]\]", re.S)
_CALL = re.compile(r"\[\[call:([\w.\-]+)\s*")
_EXAMPLES = {"string": "ok", "number": 1, "integer": 1, "boolean": True, "array": [], "object": {}}


@dataclass
class Answer:
    """Either a text message or a function call (name, JSON arguments)."""

    text: str = ""
    call: tuple[str, str] | None = None


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)
                       and isinstance(p.get("text"), str))
    return ""


def _last_user_text(items: list) -> str:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return _content_text(item.get("content"))
    return ""


def _parse_call(text: str) -> tuple[str, str] | None:
    """``[[call:NAME {json}]]`` → (NAME, arguments); the JSON may contain ``]]``."""
    match = _CALL.search(text)
    if not match:
        return None
    rest = text[match.end():]
    if rest.startswith("]]"):
        return match.group(1), "{}"
    try:
        args, _ = json.JSONDecoder().raw_decode(rest)
    except ValueError:
        return None
    return match.group(1), json.dumps(args)


def _schema_example(schema: dict) -> str:
    """A JSON object with simple values for the schema's required properties."""
    props = schema.get("properties") or {}
    value = {}
    for name in schema.get("required") or []:
        prop = props.get(name) or {}
        kind = prop.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        value[name] = prop["enum"][0] if prop.get("enum") else _EXAMPLES.get(kind, "ok")
    return json.dumps(value)


def plan_answer(body: dict, reply: str | None) -> Answer:
    """Decide the answer; the first rule that applies wins.

    1. last input item is a ``function_call_output`` → "Tool result was: <output>"
       (checked first so a ``[[call:…]]`` turn does not loop forever);
    2. ``[[call:NAME ARGS]]`` in the last user message → function call;
    3. ``[[say:TEXT]]`` in the last user message → TEXT;
    4. ``text.format.type == "json_schema"`` → JSON satisfying ``required``;
    5. the configured reply, else ``DEFAULT_REPLY``.
    """
    items = body["input"]
    last = items[-1] if items else None
    if isinstance(last, dict) and last.get("type") == "function_call_output":
        output = last.get("output")
        if not isinstance(output, str):
            output = _content_text(output) or json.dumps(output)
        return Answer(f"Tool result was: {output}")
    user_text = _last_user_text(items)
    call = _parse_call(user_text)
    if call:
        return Answer(call=call)
    say = _SAY.search(user_text)
    if say:
        return Answer(say.group(1))
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return Answer(_schema_example(fmt.get("schema") or {}))
    return Answer(reply if reply is not None else DEFAULT_REPLY)


# -- SSE events ---------------------------------------------------------------

def _split(text: str, parts: int) -> list[str]:
    """*text* in at most *parts* non-empty pieces (one piece if empty)."""
    size = max(1, math.ceil(len(text) / max(parts, 1)))
    return [text[i:i + size] for i in range(0, len(text), size)] or [text]


def _reasoning_events(n: int, index: int, deltas: int) -> tuple[list, dict]:
    item_id = f"rs_fake{n:04d}"
    where = {"item_id": item_id, "output_index": index, "summary_index": 0}
    item = {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text",
            "text": REASONING_SUMMARY}], "encrypted_content": f"gAAAAfake-encrypted-{n:04d}"}
    events = [("response.output_item.added", {"output_index": index, "item": {
                  "id": item_id, "type": "reasoning", "summary": []}}),
              ("response.reasoning_summary_part.added", {**where, "part": {
                  "type": "summary_text", "text": ""}})]
    events += [("response.reasoning_summary_text.delta", {**where, "delta": piece})
               for piece in _split(REASONING_SUMMARY, deltas)]
    events += [("response.reasoning_summary_text.done", {**where, "text": REASONING_SUMMARY}),
               ("response.reasoning_summary_part.done", {**where, "part": {
                   "type": "summary_text", "text": REASONING_SUMMARY}}),
               ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def _message_events(n: int, index: int, text: str, deltas: int) -> tuple[list, dict]:
    item_id = f"msg_fake{n:04d}"
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant",
            "content": [part]}
    events = [("response.output_item.added", {"output_index": index, "item": {
                  **item, "status": "in_progress", "content": []}}),
              ("response.content_part.added", {**where, "part": {**part, "text": ""}})]
    events += [("response.output_text.delta", {**where, "delta": piece})
               for piece in _split(text, deltas)]
    events += [("response.output_text.done", {**where, "text": text}),
               ("response.content_part.done", {**where, "part": part}),
               ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def _call_events(n: int, index: int, name: str, arguments: str, deltas: int) -> tuple[list, dict]:
    item_id = f"fc_fake{n:04d}"
    item = {"id": item_id, "type": "function_call", "status": "completed",
            "call_id": f"call_fake{n:04d}", "name": name, "arguments": arguments}
    where = {"item_id": item_id, "output_index": index}
    events = [("response.output_item.added", {"output_index": index, "item": {
        **item, "status": "in_progress", "arguments": ""}})]
    events += [("response.function_call_arguments.delta", {**where, "delta": piece})
               for piece in _split(arguments, max(deltas, 2))]
    events += [("response.function_call_arguments.done", {**where, "arguments": arguments}),
               ("response.output_item.done", {"output_index": index, "item": item})]
    return events, item


def _usage(input_tokens: int, cached: int, answer: Answer, reasoning: bool) -> dict:
    visible = answer.text if answer.call is None else "".join(answer.call)
    reasoning_tokens = REASONING_TOKENS if reasoning else 0
    output_tokens = count_tokens(visible) + reasoning_tokens
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens}


def build_events(n: int, body: dict, answer: Answer, usage: dict, deltas: int) -> list[tuple]:
    """The successful event sequence of request *n* as ``(type, payload)`` pairs."""
    response = {"id": f"resp_fake{n:04d}", "object": "response", "created_at": int(time.time()),
                "model": body["model"], "status": "in_progress", "error": None,
                "incomplete_details": None, "output": [], "usage": None}
    events = [("response.created", {"response": response}),
              ("response.in_progress", {"response": response})]
    output = []
    if body.get("reasoning"):
        more, item = _reasoning_events(n, len(output), deltas)
        events += more
        output.append(item)
    if answer.call:
        more, item = _call_events(n, len(output), *answer.call, deltas)
    else:
        more, item = _message_events(n, len(output), answer.text, deltas)
    events += more
    output.append(item)
    done = {**response, "status": "completed", "output": output, "usage": usage}
    events.append(("response.completed", {"response": done}))
    return events


def _frame(kind: str, payload: dict, sequence_number: int) -> bytes:
    data = json.dumps({"type": kind, "sequence_number": sequence_number, **payload})
    return f"event: {kind}\ndata: {data}\n\n".encode()


def _cut_after_deltas(events: list[tuple], count: int = 2) -> list[tuple]:
    """The events up to the *count*-th delta (or all but the terminal one)."""
    seen = 0
    for i, (kind, _) in enumerate(events):
        seen += kind.endswith(".delta")
        if seen == count:
            return events[:i + 1]
    return events[:-1]


# -- faults ---------------------------------------------------------------------

@dataclass
class Fault:
    name: str
    count: int = 1
    account: str | None = None
    params: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"fault": self.name, "count": self.count, "account": self.account,
                "params": self.params}


def _error(message: str, code: str | None, kind="invalid_request_error", param=None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def http_fault(name: str, params: dict) -> UpstreamError:
    """The HTTP error answer of an HTTP fault."""
    if name == "http_500":
        return UpstreamError(500, _error("An error occurred while processing your request.",
                                         None, "server_error"))
    if name == "http_401":
        return UpstreamError(401, _error("Provided authentication token is expired. "
                                         "Please try signing in again.", "token_expired"))
    if name == "usage_limit":
        resets_in = int(params.get("resets_in", 60))
        return UpstreamError(429, {"error": {
            "type": "usage_limit_reached", "message": "The usage limit has been reached",
            "plan_type": params.get("plan_type", "plus"), "resets_at": int(time.time()) + resets_in,
            "resets_in_seconds": resets_in}})
    if name == "http_429":
        message = "Rate limit reached for requests. Please try again in 1.5s."
        return UpstreamError(429, {"error": {"type": "rate_limit_exceeded", "message": message}},
                             {"Retry-After": str(params.get("retry_after", 2))})
    param = params.get("param", "temperature")
    return UpstreamError(400, {"detail": f"Unsupported parameter: {param}"})


def stream_fault(name: str, events: list[tuple], params: dict) -> tuple[list[tuple], str]:
    """Events to send for a stream fault and how the stream then ends.

    Endings: ``clean`` (terminal chunk), ``reset`` (RST, no terminal chunk),
    ``stall`` (silence for ``params.seconds``, then close without terminal chunk).
    """
    created, in_progress = events[0], events[1]
    response = {**created[1]["response"], "status": "failed"}
    if name == "stall":
        return [created], "stall"
    if name == "reset_mid_stream":
        return _cut_after_deltas(events), "reset"
    if name == "truncate":
        return _cut_after_deltas(events), "clean"
    if name == "response_failed":
        error = {"code": params.get("code", "server_error"),
                 "message": params.get("message", "An error occurred while processing your request.")}
        tail = ("response.failed", {"response": {**response, "error": error}})
    else:  # error_event
        tail = ("error", {"code": params.get("code", "rate_limit_exceeded"), "param": None,
                          "message": params.get("message", "Rate limit reached. "
                                                "Please try again in 1.5s.")})
    return [created, in_progress, tail], "clean"


# -- the server -----------------------------------------------------------------

class FakeCodexUpstream(FakeServer):
    """Fake Codex backend + OpenAI Responses API with a prompt-cache model.

    ``strict_tokens``: if given, only these bearer tokens are accepted.
    ``unsupported_params``: body keys the Codex flavour rejects with 400.
    ``event_delay`` / ``silence``: seconds between events / after
    ``response.in_progress``. ``fast``: no delays and one delta per text.
    """

    description = "Fake ChatGPT Codex backend / OpenAI Responses API"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, event_delay: float = 0.0,
                 silence: float = 0.0, fast: bool = False, reply: str | None = None,
                 strict_tokens=None, unsupported_params=DEFAULT_UNSUPPORTED,
                 models=DEFAULT_MODELS):
        super().__init__(port, host)
        self.models = list(models)
        self._config = {"reply": None, "event_delay": 0.0, "silence": 0.0, "fast": False,
                        "strict_tokens": None, "unsupported_params": set()}
        self.configure(reply=reply, event_delay=event_delay, silence=silence, fast=fast,
                       strict_tokens=strict_tokens, unsupported_params=unsupported_params)
        self._reset_state()
        self.routes.update({
            ("POST", CODEX_PATH): lambda req: self._responses(req, "codex"),
            ("POST", OPENAI_PATH): lambda req: self._responses(req, "openai"),
            ("GET", "/backend-api/codex/models"): lambda req: self._models(req, "codex"),
            ("GET", "/v1/models"): lambda req: self._models(req, "openai"),
            ("GET", "/_fake/requests"): self.control(lambda _: self.requests),
            ("POST", "/_fake/reset"): self.control(lambda _: self.reset() or {"ok": True}),
            ("GET", "/_fake/config"): self.control(lambda _: self.config),
            ("POST", "/_fake/config"): self.control(lambda p: self.configure(**p)),
            ("GET", "/_fake/faults"): self.control(lambda _: self.faults),
            ("POST", "/_fake/faults"): self.control(lambda p: self.inject(
                p["fault"], p.get("count", 1), p.get("account"), **(p.get("params") or {}))),
            ("GET", "/_fake/cache"): self.control(lambda _: self.cache_entries()),
        })

    # -- Python control API (the /_fake/ routes call these) -------------------

    def _reset_state(self):
        self._records: list[dict] = []
        self._cache: dict[tuple, str] = {}
        self._faults: list[Fault] = []

    def reset(self):
        """Forget recorded requests, cache entries and queued faults."""
        with self.lock:
            self._reset_state()

    @property
    def requests(self) -> list[dict]:
        """A snapshot of every recorded request (see the module docstring)."""
        with self.lock:
            return copy.deepcopy(self._records)

    @property
    def config(self) -> dict:
        with self.lock:
            cfg = dict(self._config)
        cfg["unsupported_params"] = sorted(cfg["unsupported_params"])
        cfg["strict_tokens"] = None if cfg["strict_tokens"] is None else sorted(cfg["strict_tokens"])
        return cfg

    def configure(self, **changes) -> dict:
        """Change any of ``CONFIG_KEYS``; returns the new configuration."""
        unknown = set(changes) - set(CONFIG_KEYS)
        if unknown:
            raise KeyError(f"unknown config keys: {sorted(unknown)}")
        for key in ("event_delay", "silence"):
            if key in changes:
                changes[key] = float(changes[key])
        if changes.get("strict_tokens") is not None:
            changes["strict_tokens"] = set(changes["strict_tokens"])
        if "unsupported_params" in changes:
            changes["unsupported_params"] = set(changes["unsupported_params"] or ())
        if "fast" in changes:
            changes["fast"] = bool(changes["fast"])
        with self.lock:
            self._config.update(changes)
        return self.config

    def inject(self, name: str, count: int = 1, account: str | None = None, **params) -> dict:
        """Queue fault *name* for the next *count* requests (of *account*, if given)."""
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
        if int(count) < 1:
            raise ValueError("count must be >= 1")
        fault = Fault(name, int(count), account, params)
        with self.lock:
            self._faults.append(fault)
        return fault.as_dict()

    @property
    def faults(self) -> list[dict]:
        """Faults still queued."""
        with self.lock:
            return [f.as_dict() for f in self._faults]

    def cache_entries(self) -> list[dict]:
        with self.lock:
            return [{"key": list(key), "chars": len(text), "tokens": count_tokens(text)}
                    for key, text in self._cache.items()]

    # -- request handling -----------------------------------------------------

    def _record(self, req, flavour: str) -> dict:
        headers = dict(req.headers.items())
        try:
            body = req.json()
        except BadRequest:
            body = None
        with self.lock:
            record = {"id": len(self._records) + 1, "flavour": flavour, "method": req.command,
                      "path": req.path, "headers": headers, "body": body, "account": None,
                      "cache_key": None, "cached_tokens": None, "input_tokens": None,
                      "status": None, "started_at": time.time(), "finished_at": None,
                      "client_closed_at": None, "fault": None}
            self._records.append(record)
        return record

    def _finish(self, record: dict, req, status: int | None):
        with self.lock:
            record.update(status=status, finished_at=time.time(),
                          client_closed_at=req.client_closed_at)

    def _take_fault(self, account: str | None) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.account is None or fault.account == account:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _response_headers(self, flavour: str, n: int) -> dict:
        headers = {"x-request-id": f"req_fake{n:04d}"}
        if flavour == "codex":
            now = int(time.time())
            headers.update({
                "x-codex-primary-used-percent": "12.0", "x-codex-primary-window-minutes": "300",
                "x-codex-primary-reset-at": str(now + 3600),
                "x-codex-secondary-used-percent": "34.0",
                "x-codex-secondary-window-minutes": "10080",
                "x-codex-secondary-reset-at": str(now + 3 * 86400),
                "x-codex-turn-state": f"ts-{n}"})
        return headers

    def _check_token(self, req, flavour: str) -> str:
        token = req.bearer()
        codex = flavour == "codex"
        if not token:
            raise UpstreamError(401, _error("Missing bearer authentication in header",
                                            "token_expired" if codex else "missing_api_key"))
        claims = read_claims(token) or {}
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp <= time.time():
            raise UpstreamError(401, _error("Provided authentication token is expired. "
                                            "Please try signing in again.", "token_expired"))
        strict = self._config["strict_tokens"]
        if strict is not None and token not in strict:
            code = "token_invalidated" if codex else "invalid_api_key"
            raise UpstreamError(401, _error("Your authentication token has been invalidated. "
                                            "Please try signing in again.", code))
        return token

    def _validate(self, req, flavour: str, body) -> str:
        """Check the request like the backend does; returns the account."""
        token = self._check_token(req, flavour)
        codex = flavour == "codex"
        if codex and not req.headers.get("chatgpt-account-id"):
            raise UpstreamError(400, {"detail": "Missing chatgpt-account-id header"})

        def bad(message, param=None, code="invalid_value"):
            return UpstreamError(400, {"detail": message} if codex
                                 else _error(message, code, param=param))

        if not isinstance(body, dict):
            raise bad("Request body must be a JSON object")
        if not isinstance(body.get("model"), str):
            raise bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        if not codex and isinstance(body.get("input"), str):
            body["input"] = [{"type": "message", "role": "user", "content": body["input"]}]
        if not isinstance(body.get("input"), list):
            raise bad("Invalid type for 'input': expected a list.", "input", "invalid_type")
        if codex and body.get("stream") is not True:
            raise bad("Stream must be set to true")
        if codex and body.get("store") is not False:
            raise bad("Store must be set to false")
        instructions = body.get("instructions", "")
        if not (isinstance(instructions, str) or (instructions is None and not codex)):
            raise bad("Invalid type for 'instructions': expected a string.", "instructions",
                      "invalid_type")
        if codex:
            for name in body:
                if name in self._config["unsupported_params"]:
                    raise bad(f"Unsupported parameter: {name}")
        elif "prompt_cache_retention" in body and body["prompt_cache_retention"] not in (
                *RETENTION_VALUES, None):
            raise bad(f"Invalid value: '{body['prompt_cache_retention']}'. Supported values are: "
                      "'in_memory' and '24h'.", "prompt_cache_retention")
        return req.headers["chatgpt-account-id"] if codex else token

    def _responses(self, req, flavour: str):
        record = self._record(req, flavour)
        n = record["id"]
        headers = self._response_headers(flavour, n)
        body = copy.deepcopy(record["body"])
        status = None
        try:
            with self.lock:
                config = dict(self._config)
            account = self._validate(req, flavour, body)
            status = self._answer(req, record, flavour, account, body, config, headers)
        except UpstreamError as err:
            status = err.status
            req.send_json(err.status, err.body, {**headers, **err.headers})
        finally:
            self._finish(record, req, status)

    def _answer(self, req, record, flavour, account, body, config, headers) -> int | None:
        """Answer a valid request; returns the HTTP status (None if none was sent)."""
        session = None
        if flavour == "codex":
            session = req.headers.get("session_id") or req.headers.get("session-id")
        key = (flavour, account, body.get("prompt_cache_key"), session)
        text = prompt_text(body)
        input_tokens = count_tokens(text)
        with self.lock:
            cached = cached_tokens(self._cache.get(key), text, input_tokens)
            record.update(account=account, cache_key=list(key), input_tokens=input_tokens,
                          cached_tokens=cached)
        fault = self._take_fault(account)
        if fault:
            with self.lock:
                record["fault"] = fault.name
            if fault.name in HTTP_FAULTS:
                raise http_fault(fault.name, fault.params)

        answer = plan_answer(body, config["reply"])
        usage = _usage(input_tokens, cached, answer, bool(body.get("reasoning")))
        events = build_events(record["id"], body, answer, usage, 1 if config["fast"] else 4)
        ending = "complete"
        if fault:
            events, ending = stream_fault(fault.name, events, fault.params)

        stall = float(fault.params.get("seconds", 30)) if fault else 0.0
        if body.get("stream") is not False:
            fast = config["fast"]
            completed = self._stream(req, headers, events, ending, stall,
                                     0.0 if fast else config["event_delay"],
                                     0.0 if fast else config["silence"])
        elif fault:  # a non-streamed answer can only fail by hanging or breaking
            if ending != "stall" or req.wait(stall):
                req.close(reset=ending != "stall")
            return None
        else:  # OpenAI flavour with stream false: the final response as JSON
            req.send_json(200, events[-1][1]["response"], headers)
            completed = True
        if completed:
            with self.lock:
                self._cache[key] = text
        return 200

    def _stream(self, req, headers, events, ending, stall, delay, silence) -> bool:
        """Send *events*, then end as *ending* says; True only for a full, clean answer."""
        req.start_chunked(200, {**headers, "Content-Type": "text/event-stream",
                                "Cache-Control": "no-cache"})
        for i, (kind, payload) in enumerate(events):
            if i and not req.wait(delay):
                return False
            if not req.write_chunk(_frame(kind, payload, i)):
                return False
            if kind == "response.in_progress" and silence and not req.wait(silence):
                return False
        if ending == "stall":
            if req.wait(stall):
                req.close()
            return False
        if ending == "reset":
            req.close(reset=True)
            return False
        return req.end_chunked() and ending == "complete"

    def _models(self, req, flavour: str):
        record = self._record(req, flavour)
        headers = self._response_headers(flavour, record["id"])
        try:
            self._check_token(req, flavour)
        except UpstreamError as err:
            req.send_json(err.status, err.body, headers)
            self._finish(record, req, err.status)
            return
        if flavour == "codex":
            body = {"models": [{"slug": m, "display_name": m, "supported_in_api": True}
                               for m in self.models]}
        else:
            body = {"object": "list", "data": [{"id": m, "object": "model", "created": 1700000000,
                                                "owned_by": "openai"} for m in self.models]}
        req.send_json(200, body, headers)
        self._finish(record, req, 200)

    # -- command line -----------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--fast", action="store_true", help="no delays, minimal events")
        parser.add_argument("--event-delay", type=float, default=0.0)
        parser.add_argument("--silence", type=float, default=0.0)
        parser.add_argument("--reply", default=None)
        parser.add_argument("--strict-token", action="append", dest="strict_tokens",
                            help="accept only these bearer tokens (repeatable)")

    @classmethod
    def from_args(cls, args):
        return cls(port=args.port, host=args.host, event_delay=args.event_delay,
                   silence=args.silence, fast=args.fast, reply=args.reply,
                   strict_tokens=args.strict_tokens)


if __name__ == "__main__":
    FakeCodexUpstream.main()
