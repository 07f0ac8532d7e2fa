"""gateway.upstream.identity: a current Codex identity for clients that are not Codex CLI."""
from __future__ import annotations

import pytest

from gateway import config as config_mod
from gateway.upstream.identity import ClientIdentity, codex_client_version

UCFG = config_mod.UpstreamConfig()
CODEX_171 = {"originator": "codex_exec",
             "User-Agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)"}


@pytest.mark.parametrize("headers, version", [
    (CODEX_171, "0.171.0"),
    ({"originator": "codex_cli_rs", "User-Agent": "codex_cli_rs/0.180.2 (Mac OS 15.5.0; arm64)"},
     "0.180.2"),
    ({"User-Agent": "codex_cli_rs/0.180.2"}, None),                 # no originator
    ({"originator": "codex_exec", "User-Agent": "OpenAI/Python 2.1"}, None),
    ({"originator": "opencode", "User-Agent": "opencode/1.18.33"}, None),
    ({}, None),
])
def test_what_counts_as_a_real_codex_client(headers, version):
    assert codex_client_version(headers) == version


def test_non_codex_clients_get_the_configured_identity_with_no_proxy_mark():
    ident = ClientIdentity(UCFG)
    headers = ident.headers()
    assert headers["originator"] == "codex_cli_rs" and headers["version"] == "0.171.0"
    assert headers["User-Agent"].startswith("codex_cli_rs/0.171.0 (")
    assert "gateway" not in headers["User-Agent"].lower()


def test_the_newest_codex_version_seen_wins_and_is_shared_through_the_state_dir(tmp_path):
    one = ClientIdentity(UCFG, tmp_path / "client_version")
    two = ClientIdentity(UCFG, tmp_path / "client_version")
    assert one.observe({"originator": "codex_exec", "User-Agent": "codex_exec/0.190.1 (x)"})
    assert one.version() == "0.190.1"
    two._checked = 0.0  # another worker's next look at the file
    assert two.version() == "0.190.1"
    # An older client never lowers it.
    assert one.observe({"originator": "codex_exec", "User-Agent": "codex_exec/0.150.0 (x)"})
    assert one.version() == "0.190.1"
    assert ClientIdentity(UCFG, tmp_path / "client_version").version() == "0.190.1"


def test_codex_cli_keeps_its_own_headers_and_others_get_the_identity():
    from gateway.upstream.codex import CodexProfile
    from gateway.accounts.pool import Credentials
    from gateway.continuity import Continuity
    prof = CodexProfile(UCFG)
    cont = Continuity(key="K", source="prompt_cache_key")
    own = prof.headers(Credentials("t", "a"), CODEX_171, cont)
    assert own["User-Agent"] == CODEX_171["User-Agent"] and own["originator"] == "codex_exec"
    sdk = prof.headers(Credentials("t", "a"), {"User-Agent": "OpenAI/Python 2.1",
                                               "version": "9.9.9"}, cont)
    assert sdk["User-Agent"].startswith("codex_cli_rs/0.171.0") and sdk["version"] == "0.171.0"


@pytest.mark.parametrize("env, message", [
    ({"CODEX_GATEWAY_UPSTREAM_CLIENT_VERSION": "latest"}, "client_version"),
    ({"CODEX_GATEWAY_UPSTREAM_USER_AGENT": "{who}/1"}, "user_agent"),
])
def test_bad_identity_settings_fail_at_start(env, message):
    with pytest.raises(config_mod.ConfigError, match=message):
        config_mod.load(env=env)
