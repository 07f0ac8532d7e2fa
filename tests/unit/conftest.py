"""Unit-tier fixtures."""
from __future__ import annotations

import os

import pytest


@pytest.fixture
def state_env(tmp_path, monkeypatch):
    """A CLI environment of its own: no CODEX_GATEWAY_* from outside, the state
    directory under tmp_path (returned)."""
    for name in [n for n in os.environ if n.startswith("CODEX_GATEWAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CODEX_GATEWAY_ACCOUNTS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture(scope="module")
def redis_srv(request):
    """A Redis server of the test module's own, shared by its tests (log:
    ``redis-<package>.<module>-<port>.log``)."""
    from tests.redis_server import RedisServer, redis_binary

    module = request.module.__name__.removeprefix("tests.unit.").replace("test_", "")
    srv = RedisServer(redis_binary(), name=f"redis-{module}").start()
    yield srv
    srv.cleanup()
