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

CONTINUITY_PRESETS = {
    # The spec's chain: strongest signal first; Idempotency-Key is not a signal.
    "default": ("prompt_cache_key", "client_session", "conversation", "client_principal", "account"),
    # The seed's chain (CLIProxyAPI PR #2374), kept so users can compare.
    "seed": ("prompt_cache_key", "client_session", "idempotency_key", "client_principal", "account"),
}



@dataclass(frozen=True)
class ServerConfig:
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    threads: int = 1024  # threads start on demand: an idle worker holds a few
    max_body_bytes: int = 32 * 1024 * 1024
    keepalive_seconds: float = 15.0  # SSE comment while the upstream is silent
    graceful_timeout: int = 900
    log_level: str = "info"
    websockets: bool = True  # GET /v1/responses upgrades; off: 426, clients fall back to HTTP
    # One loop thread per worker carries open SSE answers and WebSocket turns
    # (gateway.relay); off: each is carried by its request thread (a wake-up and a GIL
    # hand-over per packet).
    relay: bool = True


@dataclass(frozen=True)
class AuthConfig:
    client_keys: tuple[str, ...] = ()
    # Keys file ("name sha256:<hex>" per line; plain keys are hashed on first read);
    # written by `keys create`. Empty: <state_dir>/client_keys (Config.keys_file).
    keys_file: str = ""
    # Keys for /metrics and /status only (a client key there gets 403). Same forms as
    # client_keys; `keys create --admin` writes <state_dir>/admin_keys (Config.admin_keys_file).
    admin_keys: tuple[str, ...] = ()
    admin_keys_file: str = ""


@dataclass(frozen=True)
class UpstreamConfig:
    codex_base_url: str = "https://chatgpt.com/backend-api/codex"
    openai_base_url: str = "https://api.openai.com/v1"
    connect_timeout: float = 10.0
    read_timeout: float = 300.0  # between bytes, like Codex CLI's stream idle timeout
    # The Codex identity sent for clients that are not Codex CLI (gateway.upstream.identity):
    # the version is client_version or the newest seen from a real Codex CLI, whichever is
    # higher; user_agent is a template with {originator} and {version}.
    originator: str = "codex_cli_rs"
    client_version: str = "0.171.0"
    user_agent: str = "{originator}/{version} (Debian 12.0.0; x86_64) xterm"
    codex_session_headers: tuple[str, ...] = ("session_id", "session-id")
    openai_session_headers: tuple[str, ...] = ()
    # Parameters each backend is known to reject: dropped and reported.
    codex_drop_params: tuple[str, ...] = (
        "prompt_cache_retention", "prompt_cache_options", "max_output_tokens",
        "max_completion_tokens", "max_tokens", "temperature", "top_p", "metadata", "user",
        "safety_identifier", "truncation", "stream_options", "context_management",
        "background", "top_logprobs",
    )
    openai_drop_params: tuple[str, ...] = ()
    pool_maxsize: int = 64  # idle upstream connections kept per host (at least server.threads)
    # The Codex backend's transport: "auto" (its WebSocket, HTTP when the account's
    # backend refuses it), "websocket" (never HTTP) or "http". Over the WebSocket a
    # conversation's turns after the first upload only their new items.
    codex_transport: str = "auto"
    websocket_max_sockets: int = 64        # idle upstream sockets kept per worker
    websocket_idle_seconds: float = 300.0  # an idle upstream socket is closed after this
    websocket_fallback_seconds: float = 600.0  # HTTP for an account after a refusal
    # The ChatGPT usage endpoint (quota windows of an account that is not being used).
    # Empty: derived from codex_base_url (…/backend-api/codex -> …/backend-api/wham/usage).
    codex_usage_url: str = ""
    # The backend's own model catalog (gateway.upstream.catalog): fetched at start and
    # this often (seconds); 0: never fetched, the built-in table serves.
    catalog_refresh_seconds: float = 3600.0

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
    """Usage records, written off the hot path by a background thread per worker."""

    enabled: bool = True
    path: str = ""                # empty: <state_dir>/usage.sqlite
    retention_days: int = 90
    queue_size: int = 10000       # rows waiting for the writer; beyond it rows are dropped
    batch_size: int = 500
    flush_seconds: float = 0.5
    # Quota windows of accounts whose x-codex-* headers are older than quota_stale_seconds
    # are fetched from upstream.codex_usage_url at most every quota_poll_seconds (0: never).
    quota_poll_seconds: float = 300.0
    quota_stale_seconds: float = 300.0


@dataclass(frozen=True)
class AccountsConfig:
    state_dir: str = "~/.local/state/codex-gateway"
    # Single-account shortcuts: a Codex CLI auth.json, or an OpenAI API key.
    auth_file: str = ""
    openai_api_key: str = ""
    refresh_margin_seconds: int = 300


@dataclass(frozen=True)
class OAuthConfig:
    issuer: str = "https://auth.openai.com"
    token_url: str = "https://auth.openai.com/oauth/token"
    client_id: str = "app_EMoamEEZ73f0CkXaXp7hrann"
    callback_port: int = 1455


@dataclass(frozen=True)
class ContinuityConfig:
    preset: str = "default"
    sources: tuple[str, ...] = ()  # empty = the preset's chain
    scope_explicit_key: bool = True
    namespace: str = "5b0c4f1e-8a51-4d7e-9a43-4b8d8c0f6c2a"
    session_headers: tuple[str, ...] = (
        "session_id", "session-id", "x-session-id", "x-session-affinity",
        "conversation_id", "conversation-id", "thread-id",
    )
    max_signal_length: int = 512

    @property
    def chain(self) -> tuple[str, ...]:
        return self.sources or CONTINUITY_PRESETS[self.preset]


@dataclass(frozen=True)
class StateConfig:
    """Where shared state lives (docs/deploy/several-instances.md). ``sqlite``: files and SQLite in
    ``accounts.state_dir``, for one host. ``redis``: account records, health and the
    refresh lock in one Redis that several instances share."""

    backend: str = "sqlite"
    # redis:// or rediss:// (TLS), password in the URL; the environment variable
    # CODEX_GATEWAY_STATE_REDIS_URL keeps it out of the config file.
    redis_url: str = ""
    key_prefix: str = "codex-gateway:"   # several deployments may share one Redis
    timeout_seconds: float = 1.0          # connect and per-command timeout
    lock_ttl_seconds: float = 60.0        # a dead refresher's lock expires after this
    outage_wait_seconds: float = 5.0      # an expired token waits this long for Redis, then 503

    @property
    def kind(self) -> str:
        """The backend's name, lower case (the choice check ignores case)."""
        return self.backend.lower()


@dataclass(frozen=True)
class ImagesConfig:
    """``/v1/images/*``: each image is a Responses request with the image_generation tool."""

    model: str = ""                # the Responses model that calls the tool; empty: models.main_model
    concurrency: int = 4           # upstream requests at once for one call with n > 1
    max_image_bytes: int = 20 * 1024 * 1024  # one uploaded image or mask (edits); over it: 413
    url_format: str = "error"      # response_format=url: "error" (400) or "data_url"


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
    # The [models] table as written: gateway.models.load_catalog reads and checks it.
    models: dict = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return Path(os.path.expanduser(self.accounts.state_dir))

    @property
    def keys_file(self) -> Path:
        """The client keys file: ``auth.keys_file``, or ``client_keys`` in the state dir."""
        if self.auth.keys_file:
            return Path(os.path.expanduser(self.auth.keys_file))
        return self.state_dir / "client_keys"

    @property
    def admin_keys_file(self) -> Path:
        """The admin keys file: ``auth.admin_keys_file``, or ``admin_keys`` in the state dir."""
        if self.auth.admin_keys_file:
            return Path(os.path.expanduser(self.auth.admin_keys_file))
        return self.state_dir / "admin_keys"

    @property
    def usage_path(self) -> Path:
        """The usage database: ``usage.path``, or ``usage.sqlite`` in the state dir."""
        if self.usage.path:
            return Path(os.path.expanduser(self.usage.path))
        return self.state_dir / "usage.sqlite"


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
    unknown = set(cfg.continuity.chain) - set(CONTINUITY_PRESETS["default"]) - {"idempotency_key"}
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
            kwargs[name] = _check_range(_coerce(value, default, label), label)
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
        return ConfigError(f"{label}: expected {expected}, got {value!r}")

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


# The smallest value that makes sense (a bound that keeps a typo from starting a
# gateway that cannot work: no worker, no thread, a zero timeout).
_MINIMUM = {
    "server.workers": 1, "server.threads": 1, "server.max_body_bytes": 1,
    "server.keepalive_seconds": 0, "server.graceful_timeout": 0,
    "upstream.connect_timeout": 0.001, "upstream.read_timeout": 0.001,
    "upstream.pool_maxsize": 1, "accounts.refresh_margin_seconds": 0,
    "upstream.websocket_max_sockets": 0, "upstream.websocket_idle_seconds": 0.1,
    "upstream.websocket_fallback_seconds": 0,
    "oauth.callback_port": 1, "continuity.max_signal_length": 16,
    "state.timeout_seconds": 0.01, "state.lock_ttl_seconds": 1, "state.outage_wait_seconds": 0,
    "usage.retention_days": 1, "usage.queue_size": 1, "usage.batch_size": 1,
    "usage.flush_seconds": 0.01, "usage.quota_poll_seconds": 0,
    "usage.quota_stale_seconds": 0,
    "upstream.catalog_refresh_seconds": 0,
    "images.concurrency": 1, "images.max_image_bytes": 1,
}
_CHOICES = {"server.log_level": ("debug", "info", "warning", "error", "critical"),
            "state.backend": ("sqlite", "redis"),
            "upstream.codex_transport": ("auto", "websocket", "http"),
            "images.url_format": ("error", "data_url")}


def _check_range(value, label: str):
    low = _MINIMUM.get(label)
    if low is not None and value < low:
        raise ConfigError(f"{label}: must be at least {low}, got {value!r}")
    if label == "oauth.callback_port" and value > 65535:
        raise ConfigError(f"{label}: must be at most 65535, got {value!r}")
    choices = _CHOICES.get(label)
    if choices and value.lower() not in choices:
        raise ConfigError(f"{label}: must be one of {', '.join(choices)}, got {value!r}")
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
