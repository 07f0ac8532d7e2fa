"""Accounts under real gunicorn: refresh single flight, failover, stickiness, cooldowns."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from gateway.state.files import FileStore
from gateway.state.records import codex_record
from tests.support import ROOT, register_secret
from tests.fakes.oauth_issuer import FakeOAuthIssuer

from tests.support import LONG_SYSTEM, auth_headers, gateway_env


@pytest.fixture
def issuer():
    with FakeOAuthIssuer() as srv:
        yield srv


def add_account(issuer, state_dir, account_id, expired=False) -> dict:
    toks = issuer.add_account(account_id, expired=expired)
    for k in ("access_token", "refresh_token", "id_token"):
        register_secret(toks[k])
    FileStore(state_dir).save(codex_record(toks))
    return toks


def env_for(upstream, issuer, tmp_path, **extra) -> dict:
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_OAUTH_ISSUER=issuer.base_url,
                      CODEX_GATEWAY_OAUTH_TOKEN_URL=issuer.token_url, **extra)
    env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"] = ""
    return env


def ask(gw, conv: str, turn: int = 0, stream: bool = False) -> requests.Response:
    items = [{"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": f"{conv} turn {t}"}]}
             for t in range(turn + 1)]
    body = {"model": "gpt-5-codex", "instructions": LONG_SYSTEM, "input": items, "stream": stream}
    return requests.post(gw.url + "/v1/responses", json=body, timeout=30,
                         headers=auth_headers(Connection="close"))


def cli(env: dict, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=30)


def test_sixteen_concurrent_requests_on_an_expired_token_refresh_once(
        gateway_factory, upstream, issuer, tmp_path):
    issuer.configure(delay=0.3)
    state = tmp_path / "state"
    old = add_account(issuer, state, "acct-r", expired=True)
    env = env_for(upstream, issuer, tmp_path)
    # 16 requests of one key on 8-thread workers may land 9 on one worker: that queues
    # (the single flight is under test here), not a per-key ceiling (docs/security.md).
    env["CODEX_GATEWAY_SERVER_MAX_STREAMS_PER_KEY"] = "16"
    gw = gateway_factory(env, workers=4, threads=8)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: ask(gw, f"conv-{i}"), range(16)))
    assert [r.status_code for r in results] == [200] * 16
    refreshes = [c for c in issuer.calls if c["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1
    saved = json.loads((state / "accounts" / "codex-acct-r.json").read_text())
    assert saved["refresh_token"] == issuer.current_refresh_token("acct-r") != old["refresh_token"]
    register_secret(saved["refresh_token"])
    register_secret(saved["access_token"])
    assert {r["headers"]["Authorization"] for r in upstream.requests} == \
        {"Bearer " + saved["access_token"]}


def test_refresh_token_reused_marks_the_account_and_fails_over(
        gateway_factory, upstream, issuer, tmp_path):
    state = tmp_path / "state"
    bad = add_account(issuer, state, "acct-bad", expired=True)
    issuer.set_refresh_state(bad["refresh_token"], "used")
    add_account(issuer, state, "acct-good")
    env = env_for(upstream, issuer, tmp_path)
    gw = gateway_factory(env, workers=2)
    results = [ask(gw, f"conv-{i}") for i in range(8)]
    assert [r.status_code for r in results] == [200] * 8
    refreshes = [c for c in issuer.calls if c["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1 and refreshes[0]["error"]["code"] == "refresh_token_reused"
    assert {r["headers"]["chatgpt-account-id"] for r in upstream.requests
            if r["status"] == 200} == {"acct-good"}
    listed = json.loads(cli(env, "accounts", "list", "--json").stdout)
    states = {row["id"]: row["state"] for row in listed}
    assert states == {"codex-acct-bad": "needs_login", "codex-acct-good": "ok"}
    table = cli(env, "accounts", "list").stdout
    assert "needs_login" in table and bad["refresh_token"] not in table


def conversations_by_account(upstream, since: int) -> dict[str, set]:
    out: dict[str, set] = {}
    for rec in upstream.requests[since:]:
        if rec["status"] == 200:
            conv = rec["body"]["input"][0]["content"][0]["text"].split(" turn")[0]
            out.setdefault(conv, set()).add(rec["headers"]["chatgpt-account-id"])
    return out


def test_sticky_accounts_cooldown_moves_only_its_conversations_and_they_return(
        gateway_factory, upstream, issuer, tmp_path):
    state = tmp_path / "state"
    for name in ("acct-x", "acct-y", "acct-z"):
        add_account(issuer, state, name)
    gw = gateway_factory(env_for(upstream, issuer, tmp_path), workers=4, threads=4)
    convs = [f"c{i}" for i in range(24)]
    for turn in range(2):
        for c in convs:
            assert ask(gw, c, turn).status_code == 200
    home = conversations_by_account(upstream, 0)
    assert all(len(accts) == 1 for accts in home.values())  # every turn on one account
    home = {c: next(iter(a)) for c, a in home.items()}
    counts = {a: list(home.values()).count(a) for a in ("acct-x", "acct-y", "acct-z")}
    assert min(counts.values()) >= 3, counts

    upstream.inject("usage_limit", count=1, account="acct-x", resets_in=4)
    mark = len(upstream.requests)
    first_x = next(c for c in convs if home[c] == "acct-x")
    assert ask(gw, first_x, 2, stream=True).status_code == 200  # 429 on x, failed over
    for c in convs:
        if c != first_x:
            assert ask(gw, c, 2, stream=True).status_code == 200
    moved = conversations_by_account(upstream, mark)
    for c in convs:
        if home[c] == "acct-x":
            assert moved[c] != {"acct-x"}  # failed over, then stays off x while it cools
        else:
            assert moved[c] == {home[c]}  # other accounts' conversations did not move
    time.sleep(4.5)
    mark = len(upstream.requests)
    for c in convs:
        assert ask(gw, c, 3).status_code == 200
    assert {c: next(iter(a)) for c, a in conversations_by_account(upstream, mark).items()} == home


def test_all_accounts_limited_gives_429_with_the_earliest_reset(
        gateway_factory, upstream, issuer, tmp_path):
    state = tmp_path / "state"
    for name, resets in (("acct-p", 300), ("acct-q", 120)):
        add_account(issuer, state, name)
        upstream.inject("usage_limit", count=1, account=name, resets_in=resets)
    gw = gateway_factory(env_for(upstream, issuer, tmp_path), workers=4)
    first = ask(gw, "limited")
    assert first.status_code == 429
    assert 110 <= int(first.headers["Retry-After"]) <= 121
    # Every worker now skips both accounts without calling the upstream.
    n = len(upstream.requests)
    for i in range(8):
        again = ask(gw, f"other-{i}")
        assert again.status_code == 429 and 100 <= int(again.headers["Retry-After"]) <= 121
        assert "earliest" in again.json()["error"]["message"]
    assert len(upstream.requests) == n
