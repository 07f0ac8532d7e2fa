"""[state]: the backend choice, the Redis URL and what Redis mode refuses."""
from __future__ import annotations

import pytest

from gateway import config

URL = "redis://:pw@10.0.0.5:6379/0"


def load(**env):
    return config.load(env={f"CODEX_GATEWAY_{k.upper()}": v for k, v in env.items()})


def test_the_default_is_the_embedded_store():
    state = load().state
    assert (state.kind, state.redis_url, state.key_prefix) == ("sqlite", "", "codex-gateway:")


@pytest.mark.parametrize("env,kind", [
    ({"state_backend": "redis", "state_redis_url": URL}, "redis"),
    ({"state_backend": "Redis", "state_redis_url": "rediss://:pw@r.example:6380"}, "redis"),
    ({"state_backend": "redis", "state_redis_url": "unix:///run/redis.sock"}, "redis"),
    ({"state_redis_url": URL}, "sqlite"),  # the URL alone (for `state migrate`)
])
def test_valid_state_settings(env, kind):
    assert load(**env).state.kind == kind


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
    with pytest.raises(config.ConfigError) as err:
        load(**env)
    assert message in str(err.value)
    assert "pw@" not in str(err.value)


@pytest.mark.parametrize("url,shown", [
    ("redis://:secret@h:6379/0", "redis://:***@h:6379/0"),
    ("rediss://user:secret@h", "rediss://user:***@h"),
    ("redis://secret@h", "redis://***@h"),
    ("redis://h:6379", "redis://h:6379"),
])
def test_redacted_url(url, shown):
    assert config.redacted_url(url) == shown
