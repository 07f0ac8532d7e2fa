"""`codex-gateway login | accounts …` against a fake issuer, never printing secrets."""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import stat
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from gateway import config
from gateway.accounts import cli
from gateway.accounts.pool import AccountPool
from gateway.upstream.codex import CodexProfile
from tests.fakes.oauth_issuer import FakeOAuthIssuer


@pytest.fixture
def issuer():
    fake = FakeOAuthIssuer().start()
    yield fake
    fake.stop()


CODEX = CodexProfile(config.load(env={}).upstream)  # reads the x-codex-* quota headers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cfg(tmp_path, issuer=None, **extra):
    env = {"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path / "state")}
    if issuer:
        env.update(CODEX_GATEWAY_OAUTH_ISSUER=issuer.base_url,
                   CODEX_GATEWAY_OAUTH_TOKEN_URL=issuer.token_url,
                   CODEX_GATEWAY_OAUTH_CALLBACK_PORT=str(_free_port()))
    env.update(extra)
    return config.load(env=env)


def run(cfg, *argv) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(cfg, args)


def _auth_json(tmp_path, toks) -> str:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"OPENAI_API_KEY": None, "last_refresh": "2025-09-01T00:00:00Z",
                                "tokens": {**toks, "account_id": toks["account_id"]}}))
    return str(path)


def test_import_warns_about_shared_logins_and_lifts_needs_login(tmp_path, issuer, capsys):
    cfg = _cfg(tmp_path, issuer)
    toks = issuer.add_account("acct-imp", plan="pro", email="me@example.test")
    AccountPool(cfg).health.mark_needs_login("codex-acct-imp", "refresh_token_reused")
    assert run(cfg, "accounts", "import", _auth_json(tmp_path, toks), "--label", "mine") == 0
    out, err = capsys.readouterr()
    assert "Imported codex-acct-imp (me@example.test, plan pro)" in out
    assert "refresh_token_reused" in err and "codex-gateway login" in err
    path = tmp_path / "state" / "accounts" / "codex-acct-imp.json"
    rec = json.loads(path.read_text())
    assert rec["refresh_token"] == toks["refresh_token"] and rec["label"] == "mine"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not AccountPool(cfg).health.state("codex-acct-imp")["needs_login"]
    assert run(cfg, "accounts", "import", str(tmp_path / "missing.json")) == 1


def test_list_table_and_json_never_show_secrets(tmp_path, issuer, capsys, monkeypatch):
    cfg = _cfg(tmp_path, issuer)
    toks = issuer.add_account("acct-l", plan="plus")
    run(cfg, "accounts", "import", _auth_json(tmp_path, toks))
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-secret-key-123\n"))
    run(cfg, "accounts", "add-key", "--label", "backup")
    pool = AccountPool(cfg)
    (codex,) = [a for a in pool.accounts() if a.kind == "codex"]
    pool.record_success(codex, CODEX.rate_limits({"x-codex-primary-used-percent": "37",
                                "x-codex-secondary-used-percent": "5"}))
    (key,) = [a for a in pool.accounts() if a.kind == "openai"]
    pool.record_failure(key, 429, "usage_limit_reached", time.time() + 600)
    capsys.readouterr()
    assert run(cfg, "accounts", "list") == 0
    table = capsys.readouterr().out
    assert run(cfg, "accounts", "list", "--json") == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    for secret in (toks["access_token"], toks["refresh_token"], toks["id_token"],
                   "sk-secret-key-123"):
        assert secret not in table and secret not in json.dumps(rows)
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["ID", "KIND", "LABEL", "PLAN", "STATE"]
    (codex_line,) = [line for line in lines if line.startswith("codex-acct-l")]
    assert "plus" in codex_line and " ok " in codex_line
    assert "37% of 5h?" in codex_line and "5% of week?" in codex_line  # both windows
    (key_line,) = [line for line in lines if line.startswith("openai-backup")]
    assert "cooling (usage_limit_reached)" in key_line
    assert rows["codex-acct-l"]["state"] == "ok" and rows["codex-acct-l"]["last_used"]
    assert rows["codex-acct-l"]["rate_limits"]["primary"]["used_percent"] == 37.0
    assert rows["openai-backup"]["state"] == "cooling"
    assert rows["openai-backup"]["cooldown_until"] > time.time()


def test_add_key_from_env_and_remove(tmp_path, capsys, monkeypatch):
    cfg = _cfg(tmp_path, CODEX_GATEWAY_ACCOUNTS_OPENAI_API_KEY="sk-config")
    monkeypatch.delenv("OPENAI_TEST_KEY", raising=False)
    assert run(cfg, "accounts", "add-key", "--key-env", "OPENAI_TEST_KEY") == 1  # unset
    monkeypatch.setenv("OPENAI_TEST_KEY", "sk-from-env")
    assert run(cfg, "accounts", "add-key", "--key-env", "OPENAI_TEST_KEY", "--label", "env",
               "--base-url", "http://127.0.0.1:9/v1", "--weight", "2") == 0
    rec = json.loads((tmp_path / "state" / "accounts" / "openai-env.json").read_text())
    assert (rec["api_key"], rec["base_url"], rec["weight"]) == ("sk-from-env",
                                                                "http://127.0.0.1:9/v1", 2.0)
    AccountPool(cfg).health.set_cooldown("openai-env", time.time() + 60, "x")
    for near in ("openai-env\n", "openai env", "openai/env", "../openai-env", ".openai-env"):
        assert run(cfg, "accounts", "remove", near) == 1  # F11: only the exact id
        assert (tmp_path / "state" / "accounts" / "openai-env.json").exists()
    assert "give the exact id" in capsys.readouterr().err
    assert run(cfg, "accounts", "remove", "openai-env") == 0
    assert not (tmp_path / "state" / "accounts" / "openai-env.json").exists()
    assert AccountPool(cfg).health.snapshot().get("openai-env") is None
    assert run(cfg, "accounts", "remove", "openai-env") == 1
    (shortcut,) = AccountPool(cfg).accounts()  # the config's openai_api_key
    assert run(cfg, "accounts", "remove", shortcut.id) == 1
    assert "accounts.openai_api_key" in capsys.readouterr().err


def test_clear_ends_a_cooldown_for_every_worker_and_keeps_needs_login(tmp_path, monkeypatch,
                                                                       capsys):
    cfg = _cfg(tmp_path)
    for label in ("a", "b", "c"):
        monkeypatch.setattr("sys.stdin", io.StringIO(f"sk-{label}\n"))
        assert run(cfg, "accounts", "add-key", "--label", label) == 0
    worker = AccountPool(cfg)  # another process's view of the same health store
    a, b, c = sorted(worker.accounts(), key=lambda acc: acc.id)
    worker.record_failure(a, 429, "usage_limit_reached", time.time() + 3600)
    worker.record_failure(b, 500, "server_error", None)
    worker.health.mark_needs_login(c.id, "refresh_token_reused")
    assert worker.ranked("k", "gpt-5") and worker.health.state(a.id)["cooldown_until"]
    capsys.readouterr()
    assert run(cfg, "accounts", "clear", a.id) == 0
    assert "Cleared openai-a (was cooling: usage_limit_reached)" in capsys.readouterr().out
    assert not worker.health.state(a.id)["cooldown_until"]  # seen by the other pool at once
    assert run(cfg, "accounts", "clear", "--all") == 0
    out = capsys.readouterr().out
    assert "Cleared openai-b (was cooling: server_error)" in out and "openai-a" not in out
    assert not worker.health.state(b.id)["cooldown_until"]
    assert run(cfg, "accounts", "clear", c.id) == 0
    assert "needs a login" in capsys.readouterr().out
    assert worker.health.state(c.id)["needs_login"]  # only a login lifts it
    assert run(cfg, "accounts", "clear", "--all") == 0
    assert "No account is cooling." in capsys.readouterr().out
    assert run(cfg, "accounts", "clear", "openai-zzz") == 1
    assert run(cfg, "accounts", "clear") == 2


def test_add_key_from_stdin(tmp_path, monkeypatch, capsys):
    cfg = _cfg(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-piped\n"))
    assert run(cfg, "accounts", "add-key", "--models", "gpt-5, gpt-5-mini") == 0
    (account,) = AccountPool(cfg).accounts()
    assert account.kind == "openai" and account.models == ("gpt-5", "gpt-5-mini")
    assert AccountPool(cfg).credentials(account).token == "sk-piped"
    assert "sk-piped" not in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert run(cfg, "accounts", "add-key") == 1


def test_login_device(tmp_path, issuer, capsys):
    issuer.configure(auto_approve=True, login_account="acct-dev")
    issuer.add_account("acct-dev", plan="team", email="dev@example.test")
    cfg = _cfg(tmp_path, issuer)
    assert run(cfg, "login", "--device", "--timeout", "10") == 0
    out = capsys.readouterr().out
    assert f"{issuer.base_url}/codex/device" in out and "FAKE-" in out
    assert "Logged in codex-acct-dev (dev@example.test, plan team)" in out
    rec = json.loads((tmp_path / "state" / "accounts" / "codex-acct-dev.json").read_text())
    assert rec["refresh_token"] == issuer.current_refresh_token("acct-dev")
    (exchange,) = [c for c in issuer.calls if c["grant_type"] == "authorization_code"]
    assert exchange["status"] == 200


def test_login_browser_pkce_flow(tmp_path, issuer, capsys, monkeypatch):
    issuer.add_account("acct-web", plan="pro")
    cfg = _cfg(tmp_path, issuer)
    port = cfg.oauth.callback_port
    pages = []

    def browser(url):  # the user's browser: log in, follow the redirect to the callback
        query = parse_qs(urlsplit(url).query)
        assert query["redirect_uri"] == [f"http://localhost:{port}/auth/callback"]
        assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
        assert query["scope"] == ["openid profile email offline_access"]
        assert query["id_token_add_organizations"] == ["true"]
        assert query["codex_cli_simplified_flow"] == ["true"]
        assert query["client_id"] == [cfg.oauth.client_id] and query["state"][0]
        assert query["originator"] == [cfg.upstream.originator]
        pages.append(requests.get(url, timeout=10))

    monkeypatch.setattr(cli, "open_browser", browser)
    assert run(cfg, "login", "--timeout", "10") == 0
    out = capsys.readouterr().out
    assert f"ssh -L {port}:localhost:{port}" in out and "Logged in codex-acct-web" in out
    assert pages[0].status_code == 200 and "Login complete" in pages[0].text
    assert (tmp_path / "state" / "accounts" / "codex-acct-web.json").exists()


def test_login_callback_rejects_a_wrong_state(tmp_path, issuer, capsys, monkeypatch):
    cfg = _cfg(tmp_path, issuer)
    port = cfg.oauth.callback_port
    answers = []

    def forged(url):
        answers.append(requests.get(f"http://127.0.0.1:{port}/auth/callback?code=x&state=evil",
                                    timeout=5).status_code)
        requests.get(f"http://127.0.0.1:{port}/auth/callback?error=access_denied&state="
                     + parse_qs(urlsplit(url).query)["state"][0], timeout=5)

    monkeypatch.setattr(cli, "open_browser", forged)
    assert run(cfg, "login", "--timeout", "5") == 1
    assert answers == [400] and "access_denied" in capsys.readouterr().err
    assert not any(c["grant_type"] == "authorization_code" for c in issuer.calls)


def test_import_from_stdin(tmp_path, issuer, monkeypatch, capsys):
    cfg = _cfg(tmp_path, issuer)
    toks = issuer.add_account("acct-stdin")
    monkeypatch.setattr("sys.stdin", io.StringIO(open(_auth_json(tmp_path, toks)).read()))
    assert run(cfg, "accounts", "import", "-") == 0
    assert "Imported codex-acct-stdin" in capsys.readouterr().out
