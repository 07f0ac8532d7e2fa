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
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "CODEX_GATEWAY_"

CONTINUITY_PRESETS = {
    # The spec's chain: strongest signal first; Idempotency-Key is not a signal.
    "default": ("prompt_cache_key", "client_session", "conversation", "client_principal", "account"),
    # The seed's chain (CLIProxyAPI PR #2374), kept so users can compare.
    "seed": ("prompt_cache_key", "client_session", "idempotency_key", "client_principal", "account"),
}

DEFAULT_MODELS = (
    "gpt-5-codex", "gpt-5", "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1-codex-max",
    "gpt-5.2", "gpt-5.2-codex", "gpt-5.3-codex", "gpt-5.4", "gpt-5.4-mini", "gpt-5.5",
)


@dataclass(frozen=True)
class ServerConfig:
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    threads: int = 256
    max_body_bytes: int = 32 * 1024 * 1024
    keepalive_seconds: float = 15.0  # SSE comment while the upstream is silent
    graceful_timeout: int = 900
    log_level: str = "info"
    websockets: bool = True  # GET /v1/responses upgrades; off: 426, clients fall back to HTTP


@dataclass(frozen=True)
class AuthConfig:
    client_keys: tuple[str, ...] = ()
    # Extra keys file (one key per line, optional "name key"); created by `keys create`.
    keys_file: str = ""


@dataclass(frozen=True)
class UpstreamConfig:
    codex_base_url: str = "https://chatgpt.com/backend-api/codex"
    openai_base_url: str = "https://api.openai.com/v1"
    connect_timeout: float = 10.0
    read_timeout: float = 300.0  # between bytes, like Codex CLI's stream idle timeout
    originator: str = "codex_cli_rs"
    user_agent: str = "codex_cli_rs/0.169.0 (codex-gateway)"
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
    pool_maxsize: int = 64


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
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    continuity: ContinuityConfig = field(default_factory=ContinuityConfig)
    models: tuple[str, ...] = DEFAULT_MODELS

    @property
    def state_dir(self) -> Path:
        return Path(os.path.expanduser(self.accounts.state_dir))


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
    return cfg


def _apply_env(data: dict, env) -> None:
    """Map CODEX_GATEWAY_<SECTION>_<KEY> (or CODEX_GATEWAY_MODELS) onto data."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        rest = name[len(ENV_PREFIX):].lower()
        if rest in sections:
            data[rest] = value
            continue
        section, _, key = rest.partition("_")
        if section in sections and key:
            data.setdefault(section, {})[key] = value


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
        else:
            kwargs[name] = _coerce(value, default, label)
    return cls(**kwargs)


def _coerce(value, default, label: str):
    """Convert a TOML or environment value to the type of its default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = value.strip()
                if value.startswith("["):
                    value = json.loads(value)
                else:
                    value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            return tuple(str(v) for v in value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{label}: cannot use {value!r} ({exc.__class__.__name__})") from None


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
