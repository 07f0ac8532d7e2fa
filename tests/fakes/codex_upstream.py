"""tests.fakes.codex_upstream
~~~~~~~~~~~~~~~~~~~~~~~~~~~
A fake of the ChatGPT Codex backend (``POST /backend-api/codex/responses``)
and of the OpenAI Responses API (``POST /v1/responses``) on one server.

It is strict where the real backend is strict (``stream``/``store`` values,
unsupported parameters including ``previous_response_id``, ``item_reference``
items and ``system`` messages, bearer and ``chatgpt-account-id``), streams the same
SSE events, and credits ``cached_tokens`` by the deterministic prompt-cache
model of :mod:`tests.fakes.codex_answers`, keyed by ``(flavour, account,
prompt_cache_key, session header)``.

Faults are queued (``inject`` or ``POST /_fake/faults``) and consumed in FIFO
order by the next matching request; every request is recorded and readable
through ``requests`` or ``GET /_fake/requests``, with the bytes it took on the
wire (``wire_bytes``).

**WebSocket** (``GET /backend-api/codex/responses`` with ``Upgrade``): with
``websocket="accept"`` it is the backend's Responses socket: one
``response.create`` JSON text frame per request, every event back as one JSON
text frame, and connection-scoped memory of the last completed response, so a
frame may send ``previous_response_id`` plus the new items only. It is strict
like the real one: an id the connection does not hold is the error frame
``previous_response_not_found``, ``store`` must be false, every HTTP check and
fault applies (an HTTP fault is an error frame with its status). A prewarm
(``generate: false``, Codex's first frame) generates nothing: ``response.created``,
``response.in_progress``, then ``response.completed`` with empty ``output`` and
zero usage (it costs nothing); its prompt is cached and the connection remembers
it, so the next frame may continue from its id. Prewarms take no queued fault.
Its records have ``transport: "websocket"``, ``prewarm`` (true for a
``generate: false``), the request as the backend understood it in ``body`` (the
full input) and what arrived in ``wire``. Otherwise (the default)
the upgrade is refused with the status in ``websocket`` (426), so the gateway's
``auto`` transport falls back to HTTP; every upgrade is recorded in
``handshakes``. An HTTP fault queued with ``at="upgrade"`` (``inject("usage_limit",
at="upgrade")``) refuses the next accepted upgrade with that fault's status,
body and headers instead (an expired login, a usage limit), and is never taken
by a request.

Run standalone with ``python -m tests.fakes.codex_upstream --port 18001 [--fast]
[--websocket]``.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field

from tests.fakes.codex_answers import (
    GATED_MESSAGE,
    build_events,
    cached_tokens,
    catalog_etag,
    count_tokens,
    model_info,
    offered,
    plan_answer,
    prompt_text,
    request_client_version,
    sse_frame,
    stream_fault,
    unreadable_reasoning,
    usage_for,
    version_tuple,
)
from tests.fakes.jwt import read_claims
from tests.fakes.server import BadRequest, FakeServer
from tests.fakes.ws_server import Gone, accept

CODEX_PATH = "/backend-api/codex/responses"
USAGE_PATH = "/backend-api/wham/usage"
OPENAI_PATH = "/v1/responses"
DEFAULT_MODELS = ("gpt-5-codex", "gpt-5", "gpt-5-codex-mini")
DEFAULT_UNSUPPORTED = frozenset({
    "prompt_cache_retention", "max_output_tokens", "max_completion_tokens", "max_tokens",
    "temperature", "top_p", "metadata", "previous_response_id", "user", "safety_identifier",
    "truncation", "stream_options", "prompt_cache_options",
})
RETENTION_VALUES = ("in_memory", "24h")
HTTP_FAULTS = frozenset({"http_500", "http_401", "usage_limit", "http_429", "http_400_unsupported",
                         "echo"})
STREAM_FAULTS = frozenset({"stall", "reset_mid_stream", "response_failed", "error_event",
                           "truncate", "reset_at_once", "reset_after_created"})
FAULTS = HTTP_FAULTS | STREAM_FAULTS
CONFIG_KEYS = ("reply", "schema_reply", "event_delay", "silence", "fast", "strict_tokens",
               "unsupported_params", "websocket", "deltas", "catalog", "rate_limit_events",
               "upgrade_delay")
WS_IDLE = 600.0  # seconds a fake socket waits for its next frame


def _plan(n: int, body: dict, config: dict, input_tokens: int, cached: int, fault,
          account: str | None = None):
    """The events of answer *n* and how its stream ends (``stream_fault``), and
    how long a stall lasts: the same for the HTTP stream and the WebSocket."""
    answer = plan_answer(body, config["reply"], config.get("schema_reply"))
    usage = usage_for(input_tokens, cached, answer, bool(body.get("reasoning")))
    events = build_events(n, body, answer, usage,
                          1 if config["fast"] else config.get("deltas") or 4, account)
    if config.get("rate_limit_events"):  # the account's quota, first, as the backend sends it
        events.insert(0, ("codex.rate_limits", rate_limits_event()))
    if not fault:
        return events, "complete", 0.0
    events, ending = stream_fault(fault.name, events, fault.params)
    return events, ending, float(fault.params.get("seconds", 30))


def rate_limits_event() -> dict:
    now = int(time.time())
    return {"type": "codex.rate_limits", "plan_type": "plus", "rate_limits": {
        "primary": {"used_percent": 12.0, "window_minutes": 300, "reset_at": now + 3600},
        "secondary": {"used_percent": 34.0, "window_minutes": 10080, "reset_at": now + 3 * 86400}}}


class UpstreamError(Exception):
    """An answer that is an HTTP error instead of a stream."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


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
    if name == "echo":  # a hostile upstream: says what it was sent (see _echoing)
        return UpstreamError(int(params.get("status", 400)), _error(
            params.get("message", "got {authorization}"), params.get("code"),
            params.get("type", "invalid_request_error")), params.get("headers"))
    param = params.get("param", "temperature")
    return UpstreamError(400, {"detail": f"Unsupported parameter: {param}"})


def _echoing(fault: Fault, req) -> Fault:
    """*fault* with ``{authorization}`` and ``{account_id}`` in its text params
    replaced by what this request carried: an upstream that echoes secrets."""
    def fill(value):
        if isinstance(value, str):
            return (value.replace("{authorization}", req.headers.get("Authorization", ""))
                    .replace("{account_id}", req.headers.get("chatgpt-account-id", "")))
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value
    return Fault(fault.name, fault.count, fault.account, fill(fault.params))


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
                 models=DEFAULT_MODELS, websocket="refuse", deltas: int = 4):
        super().__init__(port, host)
        self.models = list(models)
        self._config = {"reply": None, "schema_reply": None, "event_delay": 0.0, "silence": 0.0,
                        "fast": False, "strict_tokens": None, "unsupported_params": set(),
                        "websocket": 426,
                        "upgrade_delay": 0.0,  # seconds before a WebSocket upgrade is answered
                        "deltas": 4,  # text deltas per answer part
                        # The backend's catalog: [{slug, minimal_client_version?,
                        # base_instructions?}]; None: one plain entry per ``models``.
                        "catalog": None,
                        "rate_limit_events": False}  # codex.rate_limits first in each answer
        self.configure(reply=reply, event_delay=event_delay, silence=silence, fast=fast,
                       strict_tokens=strict_tokens, unsupported_params=unsupported_params,
                       websocket=websocket, deltas=deltas)
        self._reset_state()
        self.routes.update({
            ("POST", CODEX_PATH): lambda req: self._responses(req, "codex"),
            ("POST", OPENAI_PATH): lambda req: self._responses(req, "openai"),
            ("GET", CODEX_PATH): self._websocket,
            ("GET", "/backend-api/codex/models"): lambda req: self._models(req, "codex"),
            ("GET", "/v1/models"): lambda req: self._models(req, "openai"),
            ("GET", "/_fake/requests"): self.control(lambda _: self.requests),
            ("GET", "/_fake/handshakes"): self.control(lambda _: self.handshakes),
            ("POST", "/_fake/reset"): self.control(lambda _: self.reset() or {"ok": True}),
            ("POST", "/_fake/forget_responses"): self.control(
                lambda _: self.forget_responses() or {"ok": True}),
            ("GET", "/_fake/config"): self.control(lambda _: self.config),
            ("POST", "/_fake/config"): self.control(lambda p: self.configure(**p)),
            ("GET", "/_fake/faults"): self.control(lambda _: self.faults),
            ("POST", "/_fake/faults"): self.control(lambda p: self.inject(
                p["fault"], p.get("count", 1), p.get("account"), **(p.get("params") or {}))),
            ("GET", "/_fake/cache"): self.control(lambda _: self.cache_entries()),
            ("GET", USAGE_PATH): self._usage,
            ("GET", "/_fake/usage_polls"): self.control(lambda _: self.usage_polls),
            ("GET", "/_fake/catalog_fetches"): self.control(lambda _: self.catalog_fetches),
            ("POST", "/_fake/usage"): self.control(lambda p: self.set_usage(
                p.get("account"), p.get("payload"), p.get("status", 200))),
            ("POST", "/_fake/quota"): self.control(lambda p: self.set_quota(**p)),
        })

    # -- Python control API (the /_fake/ routes call these) -------------------

    def _reset_state(self):
        self._records: list[dict] = []
        self._handshakes: list[dict] = []
        self._ws_epoch = 0  # bumped by forget_responses(): every socket's memory is gone
        self._cache: dict[tuple, str] = {}
        self._faults: list[Fault] = []
        self._usage_polls: list[dict] = []
        self._catalog_fetches: list[dict] = []
        self._usage_answers: dict[str | None, tuple[int, object]] = {}
        self._quota: dict[str, dict] = {}  # account -> x-codex-* windows (set_quota)

    def set_usage(self, account: str | None, payload, status: int = 200) -> dict:
        """What ``GET /backend-api/wham/usage`` answers for *account* (None: every
        account without an answer of its own); ``payload`` None restores the default."""
        with self.lock:
            if payload is None and status == 200:
                self._usage_answers.pop(account, None)
            else:
                self._usage_answers[account] = (int(status), payload)
        return {"ok": True}

    def set_quota(self, account: str, primary: float | None = None,
                  secondary: float | None = None, reset_in: float = 3600.0,
                  fill: float = 0.0) -> dict:
        """The ``x-codex-*`` windows *account*'s answers report: used percent of the
        primary and secondary window (None: the default), the primary's reset in
        *reset_in* seconds; each answer then adds *fill* points to the primary. At
        100 % the account is refused like the backend does (``usage_limit_reached``).
        The usage endpoint reports the same windows (unless ``set_usage`` says otherwise)."""
        with self.lock:
            self._quota[account] = {"primary": primary, "secondary": secondary,
                                    "reset_in": float(reset_in), "fill": float(fill)}
        return {"ok": True}

    def _quota_headers(self, account: str | None, served: bool = False) -> dict:
        """*account*'s windows as headers (after this answer, if *served*); {} when
        none were set."""
        now = int(time.time())
        with self.lock:
            quota = self._quota.get(account)
            if not quota:
                return {}
            if served and quota["primary"] is not None:
                quota["primary"] = min(quota["primary"] + quota["fill"], 100.0)
            out = {}
            if quota["primary"] is not None:
                out["x-codex-primary-used-percent"] = f"{quota['primary']:.1f}"
                out["x-codex-primary-window-minutes"] = "300"
                out["x-codex-primary-reset-at"] = str(now + int(quota["reset_in"]))
            if quota["secondary"] is not None:
                out["x-codex-secondary-used-percent"] = f"{quota['secondary']:.1f}"
            return out

    def _over_quota(self, account: str | None) -> bool:
        with self.lock:
            quota = self._quota.get(account) or {}
            return (quota.get("primary") or 0) >= 100

    @property
    def usage_polls(self) -> list[dict]:
        """Each usage-endpoint call: ``{account, at, status}`` (kept apart from
        ``requests``, which are the Responses calls)."""
        with self.lock:
            return copy.deepcopy(self._usage_polls)

    def reset(self):
        """Forget recorded requests, cache entries and queued faults."""
        with self.lock:
            self._reset_state()

    @property
    def requests(self) -> list[dict]:
        """A snapshot of every recorded request, oldest first.

        Each is ``{id, flavour, method, path, headers, body, account,
        cache_key, cached_tokens, input_tokens, status, started_at,
        finished_at, client_closed_at, fault}``; ``status`` is None when the
        connection was dropped without an answer.
        """
        with self.lock:
            return copy.deepcopy(self._records)

    def forget_responses(self) -> None:
        """Every open socket forgets its previous response (as a backend that lost
        it would): the next ``previous_response_id`` is not found."""
        with self.lock:
            self._ws_epoch += 1

    @property
    def handshakes(self) -> list[dict]:
        """Every WebSocket upgrade asked for, oldest first:
        ``{id, account, status, headers, at, fault}`` (101 when accepted)."""
        with self.lock:
            return copy.deepcopy(self._handshakes)

    @property
    def config(self) -> dict:
        with self.lock:
            cfg = dict(self._config)
        cfg["unsupported_params"] = sorted(cfg["unsupported_params"])
        if cfg["strict_tokens"] is not None:
            cfg["strict_tokens"] = sorted(cfg["strict_tokens"])
        return cfg

    def configure(self, **changes) -> dict:
        """Change any of ``CONFIG_KEYS``; returns the new configuration."""
        unknown = set(changes) - set(CONFIG_KEYS)
        if unknown:
            raise KeyError(f"unknown config keys: {sorted(unknown)}")
        for key in ("event_delay", "silence", "upgrade_delay"):
            if key in changes:
                changes[key] = float(changes[key])
        if changes.get("strict_tokens") is not None:
            changes["strict_tokens"] = set(changes["strict_tokens"])
        if "unsupported_params" in changes:
            changes["unsupported_params"] = set(changes["unsupported_params"] or ())
        if "fast" in changes:
            changes["fast"] = bool(changes["fast"])
        if "websocket" in changes:
            mode = changes["websocket"]
            if mode in ("refuse", None, False):
                mode = 426
            elif mode is True:
                mode = "accept"
            if mode != "accept" and not (isinstance(mode, int) and 200 <= mode < 600
                                         and mode != 101):
                raise ValueError("websocket must be 'accept', 'refuse' or an HTTP status")
            changes["websocket"] = mode
        with self.lock:
            self._config.update(changes)
        return self.config

    def inject(self, name: str, count: int = 1, account: str | None = None, **params) -> dict:
        """Queue fault *name* for the next *count* requests (of *account*, if given)."""
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULTS)}")
        if params.get("at") not in (None, "upgrade") or (
                params.get("at") == "upgrade" and name not in HTTP_FAULTS):
            raise ValueError(f"at='upgrade' takes an HTTP fault: {sorted(HTTP_FAULTS)}")
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
                      "client_closed_at": None, "fault": None, "transport": "http",
                      "wire_bytes": len(req.body)}
            self._records.append(record)
        return record

    def _finish(self, record: dict, req, status: int | None = None, store: tuple | None = None):
        """Complete the record, and cache the prompt, *before* the last byte is sent.

        A client that reads ``/_fake/requests`` or sends its next turn as soon
        as its response ends must never see the previous request unfinished.
        """
        with self.lock:
            if store:
                self._cache[store[0]] = store[1]
            if status is not None:
                record["status"] = status
            record.update(finished_at=time.time(), client_closed_at=req.client_closed_at)

    def _take_fault(self, account: str | None, upgrade: bool = False) -> Fault | None:
        """The next queued fault for *account*: of an upgrade (``at="upgrade"``) or
        of a request, as *upgrade* says."""
        with self.lock:
            for fault in self._faults:
                if (fault.params.get("at") == "upgrade") != upgrade:
                    continue
                if fault.account is None or fault.account == account:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def catalog_entries(self) -> list[dict]:
        """The backend's whole catalog (every client version)."""
        with self.lock:
            specs = self._config["catalog"]
        specs = specs if specs is not None else [{"slug": m} for m in self.models]
        return [model_info(spec, i) for i, spec in enumerate(specs)]

    def _response_headers(self, flavour: str, n: int) -> dict:
        headers = {"x-request-id": f"req_fake{n:04d}"}
        if flavour == "codex":
            headers["X-Models-Etag"] = catalog_etag(self.catalog_entries())
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
        if codex:
            gated = next((e for e in self.catalog_entries() if e["slug"] == body["model"]
                          and e.get("minimal_client_version")), None)
            if gated is not None and gated not in offered([gated],
                                                          request_client_version(req.headers)):
                raise bad(GATED_MESSAGE.format(model=body["model"]))
        instructions = body.get("instructions", "")
        if not (isinstance(instructions, str) or (instructions is None and not codex)):
            raise bad("Invalid type for 'instructions': expected a string.", "instructions",
                      "invalid_type")
        if codex:
            for name in body:
                if name in self._config["unsupported_params"]:
                    raise bad(f"Unsupported parameter: {name}")
            for item in body["input"]:
                if not isinstance(item, dict):
                    continue
                if item.get("type") == "item_reference":  # nothing is persisted (store false)
                    raise bad(f"Item with id '{item.get('id')}' not found. Items are not "
                              "persisted when `store` is set to false. Try again with `store` "
                              "set to true, or remove this item from your input.")
                if item.get("role") == "system":
                    raise bad("System messages are not allowed")
        elif "prompt_cache_retention" in body and body["prompt_cache_retention"] not in (
                *RETENTION_VALUES, None):
            raise bad(f"Invalid value: '{body['prompt_cache_retention']}'. Supported values are: "
                      "'in_memory' and '24h'.", "prompt_cache_retention")
        account = req.headers["chatgpt-account-id"] if codex else token
        foreign = unreadable_reasoning(body, account)
        if foreign:  # what the backend says of reasoning another account encrypted
            raise UpstreamError(400, _error(
                f"The encrypted content for item {foreign} could not be verified. Reason: "
                "Encrypted content could not be decrypted or parsed.",
                "invalid_encrypted_content"))
        return account

    def _responses(self, req, flavour: str):
        record = self._record(req, flavour)
        headers = self._response_headers(flavour, record["id"])
        try:
            with self.lock:
                config = dict(self._config)
            body = copy.deepcopy(record["body"])
            account = self._validate(req, flavour, body)
            self._answer(req, record, flavour, account, body, config, headers)
        except UpstreamError as err:
            self._finish(record, req, err.status)
            req.send_json(err.status, err.body, {**headers, **err.headers})

    def _account_prompt(self, req, record, flavour, account, body):
        """The prompt cache this request meets (per account + key + session, on both
        transports): its key, prompt text, input tokens and cached tokens, recorded."""
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
        return key, text, input_tokens, cached

    def _answer(self, req, record, flavour, account, body, config, headers):
        """Answer a valid request: stream (or JSON), honouring a queued fault."""
        key, text, input_tokens, cached = self._account_prompt(req, record, flavour, account,
                                                               body)
        if self._over_quota(account):
            raise http_fault("usage_limit", {"resets_in": 3600})
        headers.update(self._quota_headers(account, served=True))
        fault = self._take_fault(account)
        if fault:
            fault = _echoing(fault, req)
            with self.lock:
                record["fault"] = fault.name
            if fault.name in HTTP_FAULTS:
                raise http_fault(fault.name, fault.params)

        events, ending, stall = _plan(record["id"], body, config, input_tokens, cached, fault,
                                      account)
        if ending == "reset" and not events:  # reset_at_once: not even a status line
            self._finish(record, req)
            req.close(reset=True)
        elif body.get("stream") is not False:
            fast = config["fast"]
            self._stream(req, record, headers, events, ending, (key, text), stall,
                         0.0 if fast else config["event_delay"], 0.0 if fast else config["silence"])
        elif not fault:  # OpenAI flavour with stream false: the final response as JSON
            self._finish(record, req, 200, (key, text))
            req.send_json(200, events[-1][1]["response"], headers)
        else:  # a JSON answer can only fail by hanging or breaking
            if ending != "stall" or req.wait(stall):
                req.close(reset=ending != "stall")
            self._finish(record, req)

    def _stream(self, req, record, headers, events, ending, store, stall, delay, silence):
        """Send *events* as SSE, then end as *ending* says (see ``stream_fault``)."""
        with self.lock:
            record["status"] = 200
        req.start_chunked(200, {**headers, "Content-Type": "text/event-stream",
                                "Cache-Control": "no-cache"})
        for i, (kind, payload) in enumerate(events):
            sent = (i == 0 or req.wait(delay)) and req.write_chunk(sse_frame(kind, payload, i))
            if sent and kind == "response.in_progress" and silence:
                sent = req.wait(silence)
            if not sent:
                return self._finish(record, req)
        if ending == "stall" and not req.wait(stall):
            return self._finish(record, req)
        self._finish(record, req, store=store if ending == "complete" else None)
        if ending in ("reset", "stall"):
            req.close(reset=ending == "reset")
        elif not req.end_chunked():
            self._finish(record, req)  # notes the disconnect

    def _usage(self, req):
        """``GET /backend-api/wham/usage``: the account's quota windows, in the shape
        peers report for the real endpoint (see gateway/usage/quota.py)."""
        account = req.headers.get("chatgpt-account-id")
        try:
            self._check_token(req, "codex")
        except UpstreamError as err:
            with self.lock:
                self._usage_polls.append({"account": account, "at": time.time(),
                                          "status": err.status})
            req.send_json(err.status, err.body)
            return
        now = int(time.time())
        with self.lock:
            status, payload = self._usage_answers.get(
                account, self._usage_answers.get(None, (200, None)))
            self._usage_polls.append({"account": account, "at": time.time(), "status": status})
            quota = self._quota.get(account)
        if payload is None and quota and account not in self._usage_answers:
            payload = {"plan_type": "plus", "rate_limit": {  # the windows its headers report
                name + "_window": {"used_percent": quota[name], "reset_at": now + (
                    int(quota["reset_in"]) if name == "primary" else 6 * 86400),
                                   "limit_window_seconds": 18000 if name == "primary"
                                   else 604800}
                for name in ("primary", "secondary") if quota[name] is not None}}
        if payload is None:
            payload = {"plan_type": "plus", "rate_limit": {
                "allowed": True, "limit_reached": False,
                "primary_window": {"used_percent": 23, "limit_window_seconds": 18000,
                                   "reset_after_seconds": 7200, "reset_at": now + 7200},
                "secondary_window": {"used_percent": 61, "limit_window_seconds": 604800,
                                     "reset_after_seconds": 259200, "reset_at": now + 259200}},
                "credits": None}
        req.send_json(status, payload)

    # -- the WebSocket -----------------------------------------------------------

    def _websocket(self, req):
        """``GET /backend-api/codex/responses``: the backend's Responses socket (with
        ``websocket="accept"``), or the refusal of the upgrade."""
        with self.lock:
            mode = self._config["websocket"]
            delay = self._config["upgrade_delay"]
            shake = {"id": len(self._handshakes) + 1, "status": None,
                     "account": req.headers.get("chatgpt-account-id"),
                     "headers": dict(req.headers.items()), "at": time.time(), "fault": None}
            self._handshakes.append(shake)

        def refuse(status: int, body: dict, headers: dict | None = None):
            with self.lock:
                shake["status"] = status
            req.close_connection = True
            req.send_json(status, body, headers)

        if delay:  # a slow upgrade (the backend's TCP + TLS + upgrade on the internet path)
            time.sleep(delay)
        if req.headers.get("Upgrade", "").lower() != "websocket":
            return refuse(405, _error("Method not allowed: use POST.", "method_not_allowed"))
        if mode != "accept":
            return refuse(mode, _error("WebSocket upgrades are not supported.", None))
        try:
            self._check_token(req, "codex")
            if not req.headers.get("chatgpt-account-id"):
                raise UpstreamError(400, {"detail": "Missing chatgpt-account-id header"})
        except UpstreamError as err:
            return refuse(err.status, err.body, err.headers)
        fault = self._take_fault(req.headers.get("chatgpt-account-id"), upgrade=True)
        if fault:
            with self.lock:
                shake["fault"] = fault.name
            err = http_fault(fault.name, fault.params)
            return refuse(err.status, err.body, err.headers)
        with self.lock:
            shake["status"] = 101
        ws = accept(req, self._response_headers("codex", shake["id"]))
        memory: dict = {}  # this connection's last completed response
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            try:
                text = ws.receive(0.05)
            except Gone:
                return
            if text is None:
                if time.monotonic() - idle_since > WS_IDLE:
                    ws.close(1000)
                    return
                continue
            if not self._ws_request(req, ws, text, memory):
                return
            idle_since = time.monotonic()
        ws.close(1001)

    def _ws_request(self, req, ws, text, memory: dict) -> bool:
        """Answer one frame; False when the connection is over."""
        raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
        try:
            frame = json.loads(raw)
        except ValueError:
            frame = None
        headers = dict(req.headers.items())
        meta = frame.get("client_metadata") if isinstance(frame, dict) else None
        if isinstance(meta, dict):  # per-turn headers travel in the frame, as Codex sends them
            headers.update({k: v for k, v in meta.items() if isinstance(v, str)})
        wire = {"previous_response_id": None, "input_items": None, "generate": None}
        if isinstance(frame, dict):
            items = frame.get("input")
            wire.update(previous_response_id=frame.get("previous_response_id"),
                        input_items=len(items) if isinstance(items, list) else None,
                        generate=frame.get("generate"))
        with self.lock:
            record = {"id": len(self._records) + 1, "flavour": "codex", "method": "WS",
                      "path": CODEX_PATH, "headers": headers, "body": None, "account": None,
                      "cache_key": None, "cached_tokens": None, "input_tokens": None,
                      "status": None, "started_at": time.time(), "finished_at": None,
                      "client_closed_at": None, "fault": None, "transport": "websocket",
                      "wire_bytes": len(raw.encode()), "wire": wire, "prewarm": False}
            self._records.append(record)

        def fail(status: int, body: dict, extra: dict | None = None) -> bool:
            err = body.get("error") if isinstance(body.get("error"), dict) else {
                "type": "invalid_request_error", "message": body.get("detail") or str(body)}
            out = {"type": "error", "status": status, "error": err}
            if extra:
                out["headers"] = {k.lower(): v for k, v in extra.items()}
            self._finish(record, req, status)
            return ws.send(json.dumps(out))

        if not isinstance(frame, dict) or frame.get("type") != "response.create":
            return fail(400, _error("Expected a JSON text frame of type response.create.",
                                    "invalid_frame"))
        body = {k: v for k, v in frame.items()
                if k not in ("type", "previous_response_id", "generate")}
        previous = frame.get("previous_response_id")
        if memory.get("epoch") != self._ws_epoch:
            memory.clear()
            memory["epoch"] = self._ws_epoch
        if previous is not None:
            last = memory.get("last")
            if not last or last["id"] != previous:
                return fail(400, _error(f"Previous response with id '{previous}' not found.",
                                        "previous_response_not_found",
                                        param="previous_response_id"))
            if not isinstance(body.get("input"), list):
                return fail(400, _error("Invalid type for 'input': expected a list.",
                                        "invalid_type", param="input"))
            body["input"] = [*copy.deepcopy(last["input"]), *copy.deepcopy(last["output"]),
                             *body["input"]]
        with self.lock:
            record["body"] = copy.deepcopy(body)
            config = dict(self._config)
        try:
            account = self._validate(req, "codex", body)
        except UpstreamError as err:
            return fail(err.status, err.body, err.headers)
        key, prompt, input_tokens, cached = self._account_prompt(req, record, "codex", account,
                                                                 body)
        if frame.get("generate") is False:
            return self._ws_prewarm(req, ws, record, body, memory, (key, prompt))
        if self._over_quota(account):
            err = http_fault("usage_limit", {"resets_in": 3600})
            return fail(err.status, err.body, err.headers)
        fault = self._take_fault(account)
        if fault:
            with self.lock:
                record["fault"] = fault.name
            if fault.name in HTTP_FAULTS:
                err = http_fault(fault.name, fault.params)
                return fail(err.status, err.body, err.headers)
        events, ending, stall = _plan(record["id"], body, config, input_tokens, cached, fault,
                                      account)
        fast = config["fast"]
        delay, silence = (0.0, 0.0) if fast else (config["event_delay"], config["silence"])
        memory.pop("last", None)  # a failed or broken response leaves nothing to continue
        if not events:  # reset_at_once
            self._finish(record, req)
            ws.reset()
            return False
        with self.lock:
            record["status"] = 200
        last_kind = events[-1][0]
        for i, (kind, payload) in enumerate(events):
            if i == len(events) - 1 and ending == "complete":
                done = payload["response"]
                memory["last"] = {"id": done["id"], "input": body["input"],
                                  "output": done["output"]}
                self._finish(record, req, store=(key, prompt))
            elif i == len(events) - 1 and ending == "clean" and last_kind in (
                    "response.failed", "error"):
                self._finish(record, req)
            sent = (i == 0 or req.wait(delay)) and ws.send(
                json.dumps({"type": kind, "sequence_number": i, **payload}))
            if sent and kind == "response.in_progress" and silence:
                sent = req.wait(silence)
            if not sent:
                req._client_gone()
                memory.pop("last", None)
                self._finish(record, req)
                return False
        if ending == "complete" or last_kind in ("response.failed", "error"):
            return True
        if ending == "stall" and not req.wait(stall):
            self._finish(record, req)
            return False
        self._finish(record, req)
        if ending == "reset":
            ws.reset()
        else:  # truncated, or stalled: the socket ends without a terminal event
            ws.close(1011)
        return False

    def _ws_prewarm(self, req, ws, record: dict, body: dict, memory: dict, store) -> bool:
        """A prewarm (``generate: false``): nothing generated and nothing billed,
        but the prompt is cached and the connection holds the response, so the
        next frame may be its id plus the new items."""
        response = {"id": f"resp_fake{record['id']:04d}", "object": "response",
                    "created_at": int(time.time()), "status": "in_progress",
                    "model": body["model"], "error": None, "incomplete_details": None,
                    "output": [], "usage": None}
        usage = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 0}
        with self.lock:
            record["prewarm"] = True
        memory["last"] = {"id": response["id"], "input": body["input"], "output": []}
        self._finish(record, req, 200, store)
        events = [("response.created", response), ("response.in_progress", response),
                  ("response.completed", {**response, "status": "completed", "usage": usage})]
        return all(ws.send(json.dumps({"type": kind, "sequence_number": i, "response": r}))
                   for i, (kind, r) in enumerate(events))

    @property
    def catalog_fetches(self) -> list[dict]:
        """``GET …/models`` requests (kept apart from ``requests``, which are turns):
        ``{flavour, client_version, if_none_match, status, etag}``."""
        with self.lock:
            return copy.deepcopy(self._catalog_fetches)

    def _models(self, req, flavour: str):
        fetch = {"flavour": flavour, "client_version": req.query.get("client_version"),
                 "if_none_match": req.headers.get("If-None-Match"), "status": None,
                 "etag": None, "user_agent": req.headers.get("User-Agent")}
        with self.lock:
            self._catalog_fetches.append(fetch)
        headers = {"x-request-id": f"req_fakemodels{len(self._catalog_fetches):04d}"}
        try:
            self._check_token(req, flavour)
        except UpstreamError as err:
            fetch["status"] = err.status
            req.send_json(err.status, err.body, headers)
            return
        if flavour == "codex":
            entries = offered(self.catalog_entries(),
                              version_tuple(req.query.get("client_version")))
            etag = fetch["etag"] = catalog_etag(entries)
            headers["ETag"] = etag
            if req.headers.get("If-None-Match") == etag:
                fetch["status"] = 304
                req._send_head(304, {**headers, "Content-Length": 0})
                return
            body = {"models": entries}
        else:
            body = {"object": "list", "data": [{"id": e["slug"], "object": "model",
                                                "created": 1700000000, "owned_by": "openai"}
                                               for e in self.catalog_entries()]}
        fetch["status"] = 200
        req.send_json(200, body, headers)

    # -- command line -----------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--fast", action="store_true", help="no delays, minimal events")
        parser.add_argument("--event-delay", type=float, default=0.0)
        parser.add_argument("--silence", type=float, default=0.0)
        parser.add_argument("--reply", default=None)
        parser.add_argument("--deltas", type=int, default=4, help="text deltas per answer part")
        parser.add_argument("--strict-token", action="append", dest="strict_tokens",
                            help="accept only these bearer tokens (repeatable)")
        parser.add_argument("--websocket", action="store_true",
                            help="serve the Responses WebSocket (default: refuse it, 426)")

    @classmethod
    def from_args(cls, args):
        return cls(port=args.port, host=args.host, event_delay=args.event_delay,
                   silence=args.silence, fast=args.fast, reply=args.reply,
                   strict_tokens=args.strict_tokens,
                   websocket="accept" if args.websocket else "refuse", deltas=args.deltas)


if __name__ == "__main__":
    FakeCodexUpstream.main()
