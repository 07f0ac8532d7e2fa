"""Configuration: defaults, TOML file, environment overrides, clear errors, the [state] section."""
from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_mod


def test_defaults_are_loopback_and_spec_chain():
    cfg = config_mod.load(env={})
    assert cfg.server.bind == "127.0.0.1:8080"
    assert cfg.continuity.chain == config_mod.CONTINUITY_PRESETS["default"]


def test_file_then_env(tmp_path):
    f = tmp_path / "gw.toml"
    f.write_text('[server]\nworkers = 3\nbind = "0.0.0.0:9000"\n[upstream]\nread_timeout = 12.5\n'
                 '[auth]\nclient_keys = ["a", "b"]\n')
    cfg = config_mod.load(str(f), env={"CODEX_GATEWAY_SERVER_WORKERS": "5",
                                        "CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": "http://x/y",
                                        "CODEX_GATEWAY_CONTINUITY_SOURCES": "client_session,account"})
    assert cfg.server.workers == 5 and cfg.server.bind == "0.0.0.0:9000"
    assert cfg.upstream.read_timeout == 12.5 and cfg.auth.client_keys == ("a", "b")
    assert cfg.upstream.codex_base_url == "http://x/y"
    assert cfg.continuity.chain == ("client_session", "account")


@pytest.mark.parametrize("env,needle", [
    ({"CODEX_GATEWAY_SERVER_WORKERS": "many"}, "server.workers"),
    ({"CODEX_GATEWAY_CONTINUITY_PRESET": "nope"}, "continuity.preset"),
    ({"CODEX_GATEWAY_CONTINUITY_SOURCES": "vibes"}, "unknown source"),
    ({"CODEX_GATEWAY_SERVER_NOPE": "1"}, "unknown setting"),
])
def test_bad_values_say_which(env, needle):
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(env=env)
    assert needle in str(exc.value)


@pytest.mark.parametrize("bind,loopback", [
    ("127.0.0.1:8080", True), ("[::1]:8080", True), ("localhost:1", True),
    ("unix:/run/gw.sock", True), ("0.0.0.0:8080", False), ("10.0.0.5:80", False), (":8080", False),
])
def test_loopback_detection(bind, loopback):
    assert config_mod.is_loopback_bind(bind) is loopback


def _toml(tmp_path, text: str) -> str:
    f = tmp_path / "gw.toml"
    f.write_text(text)
    return str(f)


@pytest.mark.parametrize("toml,message", [
    ("[server]\nworkers = 2.5", "server.workers: expected an integer, got a number"),
    ("[server]\nworkers = true", "server.workers: expected an integer, got a boolean"),
    ('[server]\nworkers = "2"', "server.workers: expected an integer, got a string"),
    ("[continuity]\nscope_explicit_key = 1", "continuity.scope_explicit_key: expected a boolean"),
    ('[continuity]\nscope_explicit_key = "false"', "continuity.scope_explicit_key: expected a "
                                                    "boolean (true or false), got a string"),
    ('[auth]\nclient_keys = "a,b"', "auth.client_keys: expected a list of strings, got a string"),
    ("[auth]\nclient_keys = [1, 2]", "auth.client_keys: expected a list of strings"),
    ("models = 5", "models: expected a table"),
    ("[models]\naliases = 5", "models: "),
    ("[upstream]\nread_timeout = true", "upstream.read_timeout: expected a number, got a boolean"),
    ('[upstream]\nread_timeout = "30"', "upstream.read_timeout: expected a number, got a string"),
    ("[upstream]\nread_timeout = inf", "upstream.read_timeout: expected a finite number"),
    ("[upstream]\ncodex_base_url = 5", "upstream.codex_base_url: expected a string, got an integer"),
    ("[server]\nworkers = 0", "server.workers: must be at least 1"),
    ("[upstream]\nread_timeout = 0", "upstream.read_timeout: must be at least"),
    ("[oauth]\ncallback_port = 70000", "oauth.callback_port: must be at most 65535"),
    ('[server]\nlog_level = "loud"', "server.log_level: must be one of debug, info"),
    ("server = 5", "server must be a table"),
])
def test_toml_types_are_checked_strictly(tmp_path, toml, message):
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(_toml(tmp_path, toml), env={})
    assert message in str(exc.value)


@pytest.mark.parametrize("toml,section,key,value", [
    ("[upstream]\nread_timeout = 30", "upstream", "read_timeout", 30.0),  # an int is a number
    ("[server]\nkeepalive_seconds = 0", "server", "keepalive_seconds", 0.0),
    ("[continuity]\nscope_explicit_key = false", "continuity", "scope_explicit_key", False),
    ('[auth]\nclient_keys = []', "auth", "client_keys", ()),
    ('[server]\nlog_level = "WARNING"', "server", "log_level", "WARNING"),
])
def test_toml_values_of_the_right_type(tmp_path, toml, section, key, value):
    cfg = config_mod.load(_toml(tmp_path, toml), env={})
    got = getattr(getattr(cfg, section), key)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name,text,section,key,value", [
    ("SERVER_WORKERS", " 3 ", "server", "workers", 3),
    ("UPSTREAM_READ_TIMEOUT", "2.5", "upstream", "read_timeout", 2.5),
    ("CONTINUITY_SCOPE_EXPLICIT_KEY", "off", "continuity", "scope_explicit_key", False),
    ("CONTINUITY_SCOPE_EXPLICIT_KEY", "Yes", "continuity", "scope_explicit_key", True),
    ("AUTH_CLIENT_KEYS", "a, b,", "auth", "client_keys", ("a", "b")),
    ("AUTH_CLIENT_KEYS", '["a,b", "c"]', "auth", "client_keys", ("a,b", "c")),
    ("UPSTREAM_CODEX_DROP_PARAMS", "", "upstream", "codex_drop_params", ()),
])
def test_env_values_are_parsed_from_text(name, text, section, key, value):
    cfg = config_mod.load(env={config_mod.ENV_PREFIX + name: text})
    assert getattr(getattr(cfg, section), key) == value


@pytest.mark.parametrize("name,text,message", [
    ("SERVER_WORKERS", "2.5", "server.workers: expected an integer, got text that is not one"),
    ("CONTINUITY_SCOPE_EXPLICIT_KEY", "maybe", "continuity.scope_explicit_key: expected a boolean"),
    ("AUTH_CLIENT_KEYS", "[1, 2]", "auth.client_keys: expected a list of strings"),
    ("AUTH_CLIENT_KEYS", "[nope", "auth.client_keys: expected a JSON list of strings"),
    ("UPSTREAM_READ_TIMEOUT", "nan", "upstream.read_timeout: expected a finite number"),
    ("SERVER", "x", "server must be a table"),
])
def test_bad_env_values_name_the_key(name, text, message):
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(env={config_mod.ENV_PREFIX + name: text})
    assert message in str(exc.value)


def test_env_over_a_non_table_in_toml_is_reported(tmp_path):
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(_toml(tmp_path, "server = 5"), env={"CODEX_GATEWAY_SERVER_WORKERS": "2"})
    assert "server must be a table" in str(exc.value)


def test_keys_file_defaults_to_the_state_dir(tmp_path):
    cfg = config_mod.load(env={"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path)})
    assert cfg.keys_file == tmp_path / "client_keys"
    cfg = config_mod.load(env={"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path),
                               "CODEX_GATEWAY_AUTH_KEYS_FILE": "~/keys"})
    assert cfg.keys_file == Path.home() / "keys"


def test_the_shipped_configs_pass_the_strict_checks():
    """deploy/systemd/config.toml is what the deploy guide installs."""
    root = Path(__file__).resolve().parents[2]
    config_mod.load(str(root / "deploy/systemd/config.toml"), env={})


@pytest.mark.parametrize("env", [
    {"AUTH_CLIENT_KEYS": '["SEKRIT-client-1", 5]'},
    {"AUTH_ADMIN_KEYS": '[{"k": "SEKRIT-client-1"}]'},
    {"SERVER_WORKERS": "SEKRIT-client-1"},
    {"SERVER_LOG_LEVEL": "SEKRIT-client-1"},
])
def test_config_errors_name_the_key_never_its_value(env):
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(env={config_mod.ENV_PREFIX + k: v for k, v in env.items()})
    assert "SEKRIT" not in str(exc.value)
    assert next(iter(env)).lower().replace("_", ".", 1) in str(exc.value)


# -- [state]: the backend choice, the Redis URL and what Redis mode refuses ---------------

URL = "redis://:pw@10.0.0.5:6379/0"


def load_state(**env):
    return config_mod.load(env={f"CODEX_GATEWAY_{k.upper()}": v for k, v in env.items()})


def test_the_default_is_the_embedded_store():
    state = load_state().state
    assert (state.kind, state.redis_url, state.key_prefix) == ("sqlite", "", "codex-gateway:")


@pytest.mark.parametrize("env,kind", [
    ({"state_backend": "redis", "state_redis_url": URL}, "redis"),
    ({"state_backend": "Redis", "state_redis_url": "rediss://:pw@r.example:6380"}, "redis"),
    ({"state_backend": "redis", "state_redis_url": "unix:///run/redis.sock"}, "redis"),
    ({"state_redis_url": URL}, "sqlite"),  # the URL alone (for `state migrate`)
])
def test_valid_state_settings(env, kind):
    assert load_state(**env).state.kind == kind


@pytest.mark.parametrize("env,message", [
    ({"state_backend": "redis"}, "needs state.redis_url"),
    ({"state_backend": "memcached"}, "state.backend: must be one of sqlite, redis"),
    ({"state_redis_url": "http://10.0.0.5"}, "expected a redis://, rediss://"),
    ({"state_backend": "redis", "state_redis_url": URL, "accounts_auth_file": "/a.json"},
     "accounts.auth_file is a file on one host"),
    ({"state_lock_ttl_seconds": "0"}, "state.lock_ttl_seconds: must be at least 1"),
    ({"state_timeout_seconds": "x"}, "state.timeout_seconds: expected a number"),
])
def test_invalid_state_settings_name_the_key(env, message):
    with pytest.raises(config_mod.ConfigError) as err:
        load_state(**env)
    assert message in str(err.value)
    assert "pw@" not in str(err.value)


@pytest.mark.parametrize("url,shown", [
    ("redis://:secret@h:6379/0", "redis://:***@h:6379/0"),
    ("rediss://user:secret@h", "rediss://user:***@h"),
    ("redis://secret@h", "redis://***@h"),
    ("redis://h:6379", "redis://h:6379"),
])
def test_redacted_url(url, shown):
    assert config_mod.redacted_url(url) == shown
