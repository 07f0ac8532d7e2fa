"""gateway.config
~~~~~~~~~~~~~~~~
Embedded defaults, an optional TOML file, then ``CODEX_GATEWAY_*`` variables.

Everything a test or a deployment must point elsewhere lives here, so no
module reads the environment on its own. The result is one frozen object that
every worker builds the same way at start.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .models import CatalogConfigError, load_catalog, parse_version

ENV_PREFIX = "CODEX_GATEWAY_"

# Every signal gateway.continuity.resolve reads, strongest first as in the default chain.
CONTINUITY_SOURCES = ("prompt_cache_key", "client_session", "conversation", "idempotency_key",
                      "client_principal", "account")
CONTINUITY_PRESETS = {
    # The spec's chain: strongest signal first; Idempotency-Key is not a signal.
    "default": ("prompt_cache_key", "client_session", "conversation", "client_principal", "account"),
    # The seed's chain (CLIProxyAPI PR #2374), kept so users can compare.
    "seed": ("prompt_cache_key", "client_session", "idempotency_key", "client_principal", "account"),
}



def setting(default, doc: str, *, min=None, max=None, choices=None):
    """A configuration field: its default, its one description (the generated reference,
    docs/reference/configuration.md, prints it) and, where a value can be wrong, its bounds
    (``min``, ``max``) or its ``choices`` (compared in lower case), checked at load.
    Descriptions are Markdown; a link in one is relative to docs/reference/."""
    meta = {"doc": doc}
    for name, value in (("min", min), ("max", max), ("choices", choices)):
        if value is not None:
            meta[name] = value
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ServerConfig:
    """gunicorn and the HTTP server. `bind`, `workers`, `threads`, `graceful_timeout` and
    `log_level` are read by gunicorn at start: they need a restart, not a reload."""

    bind: str = setting("127.0.0.1:8080", "Where gunicorn listens (`host:port` or `unix:PATH`). "
                        "A non-loopback bind requires client keys.")
    workers: int = setting(2, "Worker processes. One per vCPU is the sweet spot for CPU; each "
                           "adds ~40 MB.", min=1)
    threads: int = setting(1024, "Threads per worker: the most SSE streams and WebSockets one "
                           "worker serves at once. They start on demand (~80 KB each): an idle "
                           "worker holds a few.", min=1)
    max_body_bytes: int = setting(32 * 1024 * 1024, "The largest request body (32 MiB); larger "
                                  "bodies get a JSON 413, a larger client WebSocket message "
                                  "closes the socket with 1009. The shipped nginx has the same "
                                  "limit.", min=1)
    keepalive_seconds: float = setting(15.0, "While the upstream is silent, an SSE comment (a "
                                       "`ping` event on Messages, a ping on a WebSocket) this "
                                       "often; 0: off.", min=0)
    graceful_timeout: int = setting(900, "Seconds running streams may take to finish on a "
                                    "reload or stop.", min=0)
    log_level: str = setting("info", "The log level.",
                             choices=("debug", "info", "warning", "error", "critical"))
    websockets: bool = setting(True, "`GET /v1/responses` upgrades to a WebSocket (Codex CLI). "
                               "Off: every upgrade gets 426 and clients fall back to HTTP.")
    relay: bool = setting(True, "One loop thread per worker carries open SSE answers and "
                          "WebSocket turns once their first frames are sent "
                          "(`gateway/relay.py`). Off: each is carried by its request thread "
                          "(a wake-up and a GIL hand-over per packet).")
    next_request_wait_ms: float = setting(2.0, "After an answer on a kept-alive connection, "
                                          "how long its thread waits for the next request "
                                          "head (served on the same thread when it arrives "
                                          "whole) before handing the connection back to the "
                                          "worker's loop; 0: at once, as gunicorn does. See "
                                          "[performance](../performance.md).", min=0, max=100)
    # Hostile-client limits (docs/security.md).
    client_timeout: float = setting(10.0, "Seconds a client may take to send a request head, "
                                    "stay silent inside a request body, or leave a WebSocket "
                                    "frame unfinished; then 408 (or close 1008). See "
                                    "[security](../security.md).", min=0.1)
    min_body_rate: int = setting(16384, "Bytes per second a request body must average once "
                                 "`client_timeout` seconds have passed, or 408; 0: no rate.",
                                 min=0)
    websocket_max_frame_bytes: int = setting(0, "The largest payload of one client WebSocket "
                                             "frame, refused (1009) from its header before it "
                                             "is read; 0: `max_body_bytes`.", min=0)
    max_sockets_per_key: int = setting(0, "Open WebSockets per client key in one worker (each "
                                       "holds a thread); over it the upgrade gets 429. 0: "
                                       "`threads / 4`.", min=0)
    max_streams_per_key: int = setting(0, "API requests in progress per client key in one "
                                       "worker; over it 429. 0: `threads`.", min=0)
    reserve_threads: int = setting(0, "Threads per worker kept from WebSockets: a key that "
                                   "already holds one cannot take them, so other keys and "
                                   "`/healthz` are served. 0: `threads / 8`, at least 2.", min=0)


@dataclass(frozen=True)
class AuthConfig:
    """Client keys (the API) and admin keys (`/metrics`, `/status`). Both are stored hashed;
    `codex-gateway keys create [--admin]` writes them to the keys files."""

    client_keys: tuple[str, ...] = setting((), "Client keys, as keys or `sha256:<hex>` "
                                           "digests, besides those in `keys_file`. With none "
                                           "at all, no key is asked (loopback binds only).")
    keys_file: str = setting("", "The client keys file (`name sha256:<hex>` per line; plain "
                             "keys are hashed on first read), written by `keys create`. "
                             "Empty: `<state_dir>/client_keys`.")
    admin_keys: tuple[str, ...] = setting((), "Keys for `/metrics` and `/status` only (a "
                                          "client key there gets 403); same forms as "
                                          "`client_keys`.")
    admin_keys_file: str = setting("", "The admin keys file, written by `keys create --admin`. "
                                   "Empty: `<state_dir>/admin_keys`.")


@dataclass(frozen=True)
class UpstreamConfig:
    """The two upstreams. What the Codex backend rejects and which headers it reads come
    from research notes, not live tests, so they are settings
    ([Upstreams](../concepts/upstreams.md))."""

    codex_base_url: str = setting("https://chatgpt.com/backend-api/codex",
                                  "The ChatGPT Codex backend (accounts of kind `codex`).")
    openai_base_url: str = setting("https://api.openai.com/v1",
                                   "The OpenAI API (accounts of kind `openai`).")
    connect_timeout: float = setting(10.0, "Seconds to open an upstream connection.",
                                     min=0.001)
    read_timeout: float = setting(300.0, "Seconds the upstream may stay silent (between "
                                  "bytes) before the answer fails, like Codex CLI's stream "
                                  "idle timeout.", min=0.001)
    # The Codex identity sent for clients that are not Codex CLI (gateway.upstream.identity).
    originator: str = setting("codex_cli_rs", "The `originator` header sent to the Codex "
                              "backend for clients that are not Codex CLI.")
    client_version: str = setting("0.171.0", "The Codex CLI version claimed for clients that "
                                  "are not Codex CLI (`MAJOR.MINOR.PATCH`); the newest version "
                                  "seen from a real Codex CLI is used when it is higher.")
    user_agent: str = setting("{originator}/{version} (Debian 12.0.0; x86_64) xterm",
                              "The `User-Agent` sent with that identity: a template with "
                              "`{originator}` and `{version}` only.")
    codex_session_headers: tuple[str, ...] = setting(
        ("session_id", "session-id"), "Headers that carry the continuity key to the Codex "
        "backend (the same value as the body's `prompt_cache_key`).")
    openai_session_headers: tuple[str, ...] = setting(
        (), "The same for the OpenAI API (none: it keys on the body).")
    codex_drop_params: tuple[str, ...] = setting(
        ("prompt_cache_retention", "prompt_cache_options", "max_output_tokens",
         "max_completion_tokens", "max_tokens", "temperature", "top_p", "metadata", "user",
         "safety_identifier", "truncation", "stream_options", "context_management",
         "background", "top_logprobs"),
        "Body parameters the Codex backend rejects: dropped and named in "
        "`x-gateway-dropped-params`. A parameter it refuses with `400 Unsupported parameter` "
        "is also learned, per worker.")
    openai_drop_params: tuple[str, ...] = setting(
        (), "Body parameters the OpenAI API rejects: dropped and named in "
        "`x-gateway-dropped-params` (none known).")
    pool_maxsize: int = setting(64, "Idle upstream HTTP connections kept per host in each "
                                "worker (at least `server.threads` are kept).", min=1)
    codex_transport: str = setting(
        "auto", "The Codex backend's transport: `auto` (its WebSocket, HTTP when the "
        "account's backend refuses it), `websocket` (never HTTP) or `http`. Over the WebSocket "
        "a conversation's turns after the first upload only their new items "
        "([Upstream WebSocket](../concepts/upstream-websocket.md)).",
        choices=("auto", "websocket", "http"))
    websocket_max_sockets: int = setting(64, "Idle upstream WebSockets kept per worker (the "
                                         "least recently used is closed first).", min=0)
    websocket_idle_seconds: float = setting(300.0, "An idle upstream WebSocket is closed "
                                            "after this many seconds.", min=0.1)
    websocket_fallback_seconds: float = setting(600.0, "After a refused upgrade, the account "
                                                "uses HTTP for this many seconds (shared by "
                                                "the workers).", min=0)
    websocket_open_after_turns: int = setting(
        1, "With `auto`, a turn that finds no idle socket for its conversation goes over "
        "pooled HTTP (no upgrade on its path); once a worker has seen this many turns of the "
        "conversation it also opens one in the background for the turns after it. 0: the "
        "turn opens one and waits for the upgrade.", min=0)
    codex_usage_url: str = setting("", "The ChatGPT usage endpoint (the quota windows of an "
                                   "account nobody used lately). Empty: derived from "
                                   "`codex_base_url` (`…/backend-api/codex` → "
                                   "`…/backend-api/wham/usage`).")
    catalog_refresh_seconds: float = setting(3600.0, "The backend's own model catalog "
                                             "(`gateway/upstream/catalog.py`) is fetched at "
                                             "start and this often; 0: never, the built-in "
                                             "table serves.", min=0)

    @property
    def usage_url(self) -> str:
        return self.codex_usage_url or derive_usage_url(self.codex_base_url)


def derive_usage_url(codex_base_url: str) -> str:
    """``https://chatgpt.com/backend-api/codex`` becomes
    ``https://chatgpt.com/backend-api/wham/usage``."""
    base = codex_base_url.rstrip("/")
    if base.endswith("/codex"):
        base = base[: -len("/codex")]
    if not base.endswith("/backend-api"):
        scheme, sep, rest = base.partition("://")
        base = f"{scheme}{sep}{rest.split('/', 1)[0]}/backend-api"
    return base + "/wham/usage"


@dataclass(frozen=True)
class UsageConfig:
    """Usage records, written off the hot path by a background thread per worker
    ([Usage](../concepts/usage-and-quotas.md)), and the quota windows of idle accounts."""

    enabled: bool = setting(True, "Record one usage row per finished request "
                            "(`codex-gateway usage`, `/status`).")
    path: str = setting("", "The usage database. Empty: `<state_dir>/usage.sqlite` (with "
                        "`state.backend = \"redis\"` the rows go to Redis).")
    retention_days: int = setting(90, "Rows older than this many days are deleted (hourly).",
                                  min=1)
    queue_size: int = setting(10000, "Rows waiting for a worker's writer; beyond it rows are "
                              "dropped, never the request, and counted.", min=1)
    batch_size: int = setting(500, "Rows written at once.", min=1)
    flush_seconds: float = setting(0.5, "Rows reach the store within this many seconds.",
                                   min=0.01)
    quota_poll_seconds: float = setting(300.0, "An account whose quota headers are stale is "
                                        "asked for its windows at `upstream.codex_usage_url` "
                                        "at most this often (across workers); 0: never.",
                                        min=0)
    quota_stale_seconds: float = setting(300.0, "Quota headers (`x-codex-*`) older than this "
                                         "count as stale.", min=0)


@dataclass(frozen=True)
class AccountsConfig:
    """Where the accounts live, and two single-account shortcuts
    ([Accounts](../concepts/accounts.md))."""

    state_dir: str = setting("~/.local/state/codex-gateway", "The state directory: accounts, "
                             "keys files, health, usage (mode 0700, every file 0600).")
    auth_file: str = setting("", "Shortcut: a Codex CLI `auth.json`, used and refreshed in "
                             "place. Not with `state.backend = \"redis\"`: import it with "
                             "`accounts import` instead.")
    openai_api_key: str = setting("", "Shortcut: one OpenAI API key account.")
    refresh_margin_seconds: int = setting(300, "An access token is refreshed this many "
                                          "seconds before it expires.", min=0)


@dataclass(frozen=True)
class OAuthConfig:
    """The ChatGPT login (`codex-gateway login`) and token refresh."""

    issuer: str = setting("https://auth.openai.com", "The OAuth issuer `login` opens.")
    token_url: str = setting("https://auth.openai.com/oauth/token", "Where codes are exchanged "
                             "and tokens refreshed.")
    client_id: str = setting("app_EMoamEEZ73f0CkXaXp7hrann", "The OAuth client id "
                             "(Codex CLI's).")
    callback_port: int = setting(1455, "The localhost port of `login`'s browser callback (on a "
                                 "headless host: `ssh -L 1455:localhost:1455`).",
                                 min=1, max=65535)


@dataclass(frozen=True)
class ContinuityConfig:
    """How a conversation's key is chosen ([Continuity](../concepts/continuity.md)). Every
    instance that serves the same conversations needs the same settings."""

    preset: str = setting("default", "The chain of signals: `default`, or `seed` (the "
                          "CLIProxyAPI pull request this project started from, for "
                          "comparison).")
    sources: tuple[str, ...] = setting((), "An explicit chain, strongest first, from "
                                       + ", ".join(f"`{s}`" for s in CONTINUITY_SOURCES)
                                       + ". Empty: the preset's chain.")
    scope_explicit_key: bool = setting(True, "A client's own `prompt_cache_key` is scoped by "
                                       "its client key. Off: forwarded as it is (hashed only "
                                       "if longer than 64 characters).")
    namespace: str = setting("5b0c4f1e-8a51-4d7e-9a43-4b8d8c0f6c2a", "The UUID namespace of "
                             "every derived key.")
    session_headers: tuple[str, ...] = setting(
        ("session_id", "session-id", "x-session-id", "x-session-affinity",
         "conversation_id", "conversation-id", "thread-id"),
        "Client headers read as a session id (`client_session`); the first non-blank wins.")
    max_signal_length: int = setting(512, "A signal longer than this many characters is "
                                     "hashed.", min=16)

    @property
    def chain(self) -> tuple[str, ...]:
        return self.sources or CONTINUITY_PRESETS[self.preset]


@dataclass(frozen=True)
class StateConfig:
    """Where shared state lives ([Several instances](../deploy/several-instances.md)).
    ``sqlite``: files and SQLite in ``accounts.state_dir``, for one host. ``redis``: account
    records, health, the refresh lock and usage rows in one Redis that several instances
    share."""

    backend: str = setting("sqlite", "`sqlite` (one host) or `redis` (several).",
                           choices=("sqlite", "redis"))
    redis_url: str = setting("", "`redis://`, `rediss://` (TLS) or `unix://`, the password in "
                             "the URL; `CODEX_GATEWAY_STATE_REDIS_URL` keeps it out of the "
                             "config file.")
    key_prefix: str = setting("codex-gateway:", "Prefix of every key: several deployments "
                              "may share one Redis.")
    timeout_seconds: float = setting(1.0, "Connect and per-command timeout.", min=0.01)
    lock_ttl_seconds: float = setting(60.0, "A dead refresher's lock expires after this.",
                                      min=1)
    outage_wait_seconds: float = setting(5.0, "While Redis is unreachable, a request whose "
                                         "token expired waits this long for it, then gets a "
                                         "503 `state_store_unavailable`.", min=0)

    @property
    def kind(self) -> str:
        """The backend's name, lower case (the choice check ignores case)."""
        return self.backend.lower()


@dataclass(frozen=True)
class ImagesConfig:
    """``/v1/images/*``: each image is a Responses request with the image_generation tool
    ([Images](../images.md))."""

    model: str = setting("", "The Responses model that calls the tool; empty: "
                         "`models.main_model`.")
    concurrency: int = setting(4, "Upstream requests at once for one call with `n` > 1.", min=1)
    max_image_bytes: int = setting(20 * 1024 * 1024, "The largest uploaded image or mask "
                                   "(edits); over it: 413.", min=1)
    url_format: str = setting("error", "What `response_format=url` gets: `error` (a 400) or "
                              "`data_url`.", choices=("error", "data_url"))


@dataclass(frozen=True)
class PlacementConfig:
    """Which account a conversation goes to ([Account placement](../placement.md))."""

    strategy: str = setting("quota", "`quota`: new conversations go where the quota headroom "
                            "is, and a conversation moves off its account at the high-water "
                            "mark; `rendezvous`: by `--weight` alone (a conversation meets its "
                            "account's limit as a 429).", choices=("quota", "rendezvous"))
    high_water_percent: float = setting(90.0, "Above this used share of either quota window an "
                                        "account takes no new conversation, and its "
                                        "conversations move, once, to their next account.",
                                        min=1, max=100)
    step_percent: float = setting(20.0, "Headroom counts in steps of this many points: smaller "
                                  "changes never move a conversation.", min=1)
    hysteresis_percent: float = setting(2.0, "A headroom step (or the mark) is only left this "
                                        "many points past its edge.", min=0)
    unknown_after_seconds: float = setting(3600.0, "Quota windows older than this count as "
                                           "unknown (neutral).", min=1)


@dataclass(frozen=True)
class PrefixConfig:
    """Cache-break detection and repair per continuity key
    ([Cache breaks](../cache-breaks.md))."""

    enabled: bool = setting(True, "Classify every turn (`append`, `new`, or a rewrite "
                            "`cause@k/n`) and keep the key's memory; `false` turns detection "
                            "and repair off.")
    repair: bool = setting(True, "Restore the items the model produced when a client re-sends "
                           "them changed only in form (`x-gateway-repaired`); `false` only "
                           "reports.")
    ttl_seconds: float = setting(3600.0, "A key's memory expires this long after its last "
                                 "turn.", min=1)
    max_keys: int = setting(20000, "Keys kept in the SQLite store, the oldest dropped first "
                            "(Redis bounds by the expiry).", min=1)
    max_answers: int = setting(64, "The last answers whose output items are kept per key.",
                               min=1)
    max_bytes: int = setting(4 * 1024 * 1024, "The largest answer (or a key's fingerprints) "
                             "kept; a larger one is not kept.", min=1024)


@dataclass(frozen=True)
class ResponsesConfig:
    """The response store: what ``previous_response_id``, ``item_reference`` and
    ``GET /v1/responses/{id}`` read, where ``[state]`` says (SQLite in the state dir, or the
    shared Redis) ([The response store](../responses-store.md))."""

    store: bool = setting(True, "Keep the responses whose request did not say `store: false`; "
                          "off: nothing is kept and chaining gets a 400.")
    retention_days: float = setting(30.0, "A stored response is deleted after this many days "
                                    "(OpenAI's retention).", min=0.001)
    max_bytes: int = setting(1024 * 1024 * 1024, "Total size of the stored responses; beyond "
                             "it the oldest are deleted first.", min=1024)
    path: str = setting("", "The SQLite file; empty: `<state_dir>/responses.sqlite`.")
    queue_size: int = setting(1000, "Responses waiting for a worker's writer thread; beyond it "
                              "they are dropped (counted).", min=1)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    continuity: ContinuityConfig = field(default_factory=ContinuityConfig)
    state: StateConfig = field(default_factory=StateConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    prefix: PrefixConfig = field(default_factory=PrefixConfig)
    responses: ResponsesConfig = field(default_factory=ResponsesConfig)
    # The [models] table as written: gateway.models.load_catalog reads and checks it.
    models: dict = field(default_factory=dict, metadata={
        "doc": "The model catalog: aliases, the targets of Claude names, added and removed "
               "models, Codex CLI's list. Its keys: [Models](../models.md#configuration)."})

    @property
    def state_dir(self) -> Path:
        return Path(os.path.expanduser(self.accounts.state_dir))

    @property
    def keys_file(self) -> Path:
        """The client keys file: ``auth.keys_file``, or ``client_keys`` in the state dir."""
        return self._state_file(self.auth.keys_file, "client_keys")

    @property
    def admin_keys_file(self) -> Path:
        """The admin keys file: ``auth.admin_keys_file``, or ``admin_keys`` in the state dir."""
        return self._state_file(self.auth.admin_keys_file, "admin_keys")

    @property
    def usage_path(self) -> Path:
        """The usage database: ``usage.path``, or ``usage.sqlite`` in the state dir."""
        return self._state_file(self.usage.path, "usage.sqlite")

    @property
    def responses_path(self) -> Path:
        """The response store's SQLite file: ``responses.path``, or ``responses.sqlite``
        in the state dir."""
        return self._state_file(self.responses.path, "responses.sqlite")

    def _state_file(self, configured: str, default_name: str) -> Path:
        """A file setting: the configured path (``~`` expanded), or *default_name* in
        the state dir when it is empty."""
        if configured:
            return Path(os.path.expanduser(configured))
        return self.state_dir / default_name


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says which."""


def load(path: str | None = None, env: dict | None = None) -> Config:
    """Build the Config: defaults < TOML file < environment."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    data: dict = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    _apply_env(data, env)
    cfg = _build(Config, data, "")
    if cfg.continuity.preset not in CONTINUITY_PRESETS:
        raise ConfigError(f"continuity.preset must be one of {sorted(CONTINUITY_PRESETS)}")
    unknown = set(cfg.continuity.chain) - set(CONTINUITY_SOURCES)
    if unknown:
        raise ConfigError(f"continuity.sources has unknown source(s): {sorted(unknown)}")
    _check_state(cfg)
    _check_identity(cfg.upstream)
    catalog(cfg)  # a bad [models] table fails at start, not on the first request
    return cfg


def catalog(cfg: Config):
    """The model catalog the ``[models]`` table describes."""
    try:
        return load_catalog(cfg.models)
    except CatalogConfigError as exc:
        raise ConfigError(f"models: {exc}") from None


def _check_identity(ucfg: UpstreamConfig) -> None:
    """The Codex identity sent for non-Codex clients (gateway.upstream.identity)."""
    if parse_version(ucfg.client_version) is None:
        raise ConfigError("upstream.client_version must be MAJOR.MINOR.PATCH, e.g. 0.171.0")
    try:
        ucfg.user_agent.format(originator=ucfg.originator, version=ucfg.client_version)
    except (KeyError, IndexError, ValueError):
        raise ConfigError("upstream.user_agent may only use the fields {originator} and "
                          "{version}") from None


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _check_state(cfg: Config) -> None:
    """Redis mode needs a Redis URL, and cannot use the auth_file shortcut: that file
    is local to one host, so two instances would each refresh their own copy and the
    second refresh would be refused (``refresh_token_reused``)."""
    state = cfg.state
    if state.redis_url and not state.redis_url.startswith(REDIS_SCHEMES):
        raise ConfigError("state.redis_url: expected a redis://, rediss:// or unix:// URL "
                          f"(got one starting {state.redis_url.split(':', 1)[0]!r})")
    if state.kind != "redis":
        return
    if not state.redis_url:
        raise ConfigError("state.backend = \"redis\" needs state.redis_url (or "
                          f"{ENV_PREFIX}STATE_REDIS_URL), e.g. redis://:PASSWORD@10.0.0.5:6379/0")
    if cfg.accounts.auth_file:
        raise ConfigError("accounts.auth_file is a file on one host and cannot be shared by "
                          "several instances: with state.backend = \"redis\", import it once "
                          "with `codex-gateway accounts import FILE` and unset accounts.auth_file")


def redacted_url(url: str) -> str:
    """*url* without its password (for `check` and logs)."""
    return re.sub(r"^(\w+://)([^@/]*)@", lambda m: m.group(1) + (
        m.group(2).split(":", 1)[0] + ":***" if ":" in m.group(2) else "***") + "@", url)


class _EnvText(str):
    """A value from the environment: text to parse, where a TOML value must
    already have the right type."""


def _apply_env(data: dict, env) -> None:
    """Map CODEX_GATEWAY_<SECTION>_<KEY> (or CODEX_GATEWAY_MODELS) onto data."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        rest = name[len(ENV_PREFIX):].lower()
        if rest in sections:
            data[rest] = _EnvText(value)
            continue
        section, _, key = rest.partition("_")
        if section in sections and key:
            table = data.setdefault(section, {})
            if isinstance(table, dict):  # else _build reports "must be a table"
                table[key] = _EnvText(value)


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a table")
    known = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(data) - set(known)
    if extra:
        raise ConfigError(f"unknown setting(s) in {where or 'config'}: {sorted(extra)}")
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        label = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, label)
        elif isinstance(default, dict):
            kwargs[name] = _table(value, label)
        else:
            kwargs[name] = _check_range(_coerce(value, default, label), f, label)
    return cls(**kwargs)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _table(value, label: str) -> dict:
    """A free-form table (``[models]``), checked by its own module. From the
    environment each key is JSON (``CODEX_GATEWAY_MODELS_ALIASES='{"x": "y"}'``)
    or, for plain text, a comma list or a string."""
    if isinstance(value, _EnvText):
        value = _env_json(value, label)
    if not isinstance(value, dict):
        raise ConfigError(f"{label}: expected a table")
    return {k: _env_json(v, f"{label}.{k}") if isinstance(v, _EnvText) else v
            for k, v in value.items()}


def _env_json(text: str, label: str):
    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            raise ConfigError(f"{label}: not valid JSON") from None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return [v.strip() for v in text.split(",") if v.strip()] if "," in text else text


def _coerce(value, default, label: str):
    """The value as the type of its default: TOML values must have that type
    already (2.5 is not an integer, 1 is not a boolean, "a,b" is not a list);
    environment values are text and are parsed."""
    text = isinstance(value, _EnvText)

    def wrong(expected: str):
        return ConfigError(f"{label}: expected {expected}, got {_kind(value)}")

    if isinstance(default, bool):
        if text and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, bool):
            return value
        raise wrong("a boolean (true or false)")
    if isinstance(default, tuple):
        if text:
            value = value.strip()
            if value.startswith("["):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise wrong("a JSON list of strings") from None
            else:
                value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        return tuple(value)
    if isinstance(default, int):
        if text:
            try:
                return int(value.strip())
            except ValueError:
                raise wrong("an integer") from None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong("an integer")
    if isinstance(default, float):
        if text:
            try:
                value = float(value.strip())
            except ValueError:
                raise wrong("a number") from None
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise wrong("a number")
        if not math.isfinite(value):
            raise wrong("a finite number")
        return float(value)
    if not isinstance(value, str):
        raise wrong("a string")
    return str(value)


def _kind(value) -> str:
    """What a wrong value is, never the value itself: a mistyped setting may be a key
    or a password, and config errors are printed and logged."""
    if isinstance(value, _EnvText):
        return "text that is not one"
    for cls, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"),
                      (str, "a string"), (list, "a list"), (dict, "a table")):
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _check_range(value, f: dataclasses.Field, label: str):
    """*value* within the field's ``min``/``max`` and among its ``choices`` (``setting``).
    The bounds keep a typo from starting a gateway that cannot work: no worker, no thread,
    a zero timeout."""
    low, high, choices = (f.metadata.get(k) for k in ("min", "max", "choices"))
    if low is not None and value < low:
        raise ConfigError(f"{label}: must be at least {low}")
    if high is not None and value > high:
        raise ConfigError(f"{label}: must be at most {high}")
    if choices and value.lower() not in choices:
        raise ConfigError(f"{label}: must be one of {', '.join(choices)}")
    return value


def is_loopback_bind(bind: str) -> bool:
    """True for 127.0.0.0/8, ::1, localhost and unix sockets."""
    if bind.startswith("unix:"):
        return True
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    host = host.strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
