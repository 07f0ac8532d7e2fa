"""Configuration: defaults, TOML file, environment overrides, clear errors."""
from __future__ import annotations

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
