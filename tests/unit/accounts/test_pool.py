"""The pool: single-flight refresh across processes, needs-login, sticky
failover, per-account cooldowns shared by workers."""
from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from gateway import config
from gateway.accounts import cli
from gateway.accounts import pool as pool_mod
from gateway.accounts.pool import AccountPool
from gateway.errors import GatewayError
from gateway.state.files import FileStore
from gateway.state.records import codex_record, openai_record
from gateway.upstream.codex import CodexProfile
from tests.fakes.oauth_issuer import FakeOAuthIssuer
from tests.support import credentials_in_threads, in_child, results_of

MODEL = "gpt-5"


CODEX = CodexProfile(config.load(env={}).upstream)  # reads the x-codex-* quota headers


def _until(pool, account):
    """When *account* may be used again (None: now), as the executor asks."""
    wait = pool.cooldown_or_claim_probe(account)
    return wait[0] if wait else None


def _env(tmp_path, issuer=None, **extra) -> dict:
    env = {"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path / "state")}
    if issuer:
        env["CODEX_GATEWAY_OAUTH_ISSUER"] = issuer.base_url
        env["CODEX_GATEWAY_OAUTH_TOKEN_URL"] = issuer.token_url
    env.update(extra)
    return env


@pytest.fixture
def issuer():
    fake = FakeOAuthIssuer().start()
    yield fake
    fake.stop()


def _codex_pool(tmp_path, issuer, expired=True, account="acct-1"):
    env = _env(tmp_path, issuer)
    toks = issuer.add_account(account, plan="pro", expired=expired)
    FileStore(tmp_path / "state").save(codex_record(toks))
    return AccountPool(config.load(env=env)), toks, env


def _refresh_calls(issuer):
    return [c for c in issuer.calls if c["grant_type"] == "refresh_token"]


def first(pool, key):
    """The account the pool offers first for *key* (None: every one is cooling)."""
    return next((a.id for a in pool.select(key, MODEL)), None)


# -- refresh -------------------------------------------------------------------


def test_refresh_is_single_flight_across_processes(tmp_path, issuer):
    issuer.configure(delay=0.3)
    _, toks, env = _codex_pool(tmp_path, issuer)
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(16), ctx.Queue()
    procs = [ctx.Process(target=credentials_in_threads, args=(env, 4, barrier, queue))
             for _ in range(4)]
    for p in procs:
        p.start()
    try:
        seen = [token for tokens in results_of(procs, queue) for token in tokens]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    assert len(_refresh_calls(issuer)) == 1
    stored = json.loads((tmp_path / "state" / "accounts" / "codex-acct-1.json").read_text())
    assert len(seen) == 16 and set(seen) == {stored["access_token"]} != {toks["access_token"]}
    assert stored["refresh_token"] == issuer.current_refresh_token("acct-1")
    assert stored["refresh_token"] != toks["refresh_token"]


def test_reactive_refresh_after_401_and_stale_token_reuse(tmp_path, issuer):
    pool, toks, _ = _codex_pool(tmp_path, issuer, expired=False)
    (account,) = pool.accounts()
    assert pool.credentials(account).token == toks["access_token"]  # fresh: no refresh
    assert pool.refresh(account, toks["access_token"]) is True
    new = pool.credentials(account)
    assert new.token != toks["access_token"] and new.account_id == "acct-1"
    assert pool.refresh(account, toks["access_token"]) is True  # someone already refreshed
    assert len(_refresh_calls(issuer)) == 1
    assert pool.health.snapshot()[account.id]["last_refresh"]


@pytest.mark.parametrize("state", ["used", "expired", "invalidated"])
def test_dead_refresh_token_needs_login_once(tmp_path, issuer, state, capsys):
    pool, toks, _ = _codex_pool(tmp_path, issuer)
    issuer.set_refresh_state(toks["refresh_token"], state)
    (account,) = pool.accounts()
    assert pool.credentials(account).token == toks["access_token"]  # no exception
    assert pool.health.state(account.id)["needs_login"]
    assert pool.refresh(account, toks["access_token"]) is False
    pool.credentials(account)
    assert len(_refresh_calls(issuer)) == 1  # never retried in a loop
    assert pool.ranked("any-key", MODEL) == []
    cli.cmd_list(pool._cfg, type("Args", (), {"json": False})())
    out = capsys.readouterr().out
    assert f"needs_login (refresh_token_{'reused' if state == 'used' else state})" in out


def test_issuer_down_is_not_needs_login(tmp_path, issuer):
    pool, toks, _ = _codex_pool(tmp_path, issuer)
    issuer.stop()
    (account,) = pool.accounts()
    started = time.monotonic()
    assert pool.credentials(account).token == toks["access_token"]
    pool.credentials(account)  # the failed attempt is remembered: no second wait
    assert time.monotonic() - started < 5
    pool.record_failure(account, 401, "token_expired", None)
    row = pool.health.state(account.id)
    assert not row["needs_login"] and row["reason"] == "refresh_failed"


def test_401_after_a_good_refresh_needs_login(tmp_path, issuer):
    pool, toks, _ = _codex_pool(tmp_path, issuer, expired=False)
    (account,) = pool.accounts()
    assert pool.refresh(account, toks["access_token"])
    pool.record_failure(account, 401, "invalid_token", None)
    assert pool.health.state(account.id)["needs_login"] and pool.ranked("k", MODEL) == []


def test_auth_file_is_refreshed_in_place(tmp_path, issuer):
    toks = issuer.add_account("acct-cli", expired=True)
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": toks}))
    env = _env(tmp_path, issuer, CODEX_GATEWAY_ACCOUNTS_AUTH_FILE=str(auth))
    pool = AccountPool(config.load(env=env))
    (account,) = pool.accounts()
    assert account.id == "codex-acct-cli" and account.plan == "plus"
    creds = pool.credentials(account)
    data = json.loads(auth.read_text())
    assert creds.token == data["tokens"]["access_token"] != toks["access_token"]
    assert data["tokens"]["refresh_token"] == issuer.current_refresh_token("acct-cli")
    assert data["last_refresh"].endswith("Z")


# -- selection -----------------------------------------------------------------
def _key_pool(tmp_path, n=3, **extra_env) -> AccountPool:
    st = FileStore(tmp_path / "state")
    for i in range(n):
        st.save(openai_record(f"sk-test-{i}", label=f"k{i}"))
    return AccountPool(config.load(env=_env(tmp_path, **extra_env)))


def test_sticky_and_fair_and_failover_moves_only_the_cooling_accounts_keys(tmp_path):
    pool = _key_pool(tmp_path)
    keys = [f"conversation-{i}" for i in range(3000)]
    before = {k: first(pool, k) for k in keys}
    counts = {a.id: list(before.values()).count(a.id) for a in pool.accounts()}
    assert all(abs(c / 3000 - 1 / 3) <= 0.05 for c in counts.values()), counts
    assert before == {k: first(pool, k) for k in keys}  # sticky
    (cooled,) = [a for a in pool.accounts() if a.id == "openai-k1"]
    pool.record_failure(cooled, 429, "rate_limit_exceeded", time.time() + 3600)
    during = {k: first(pool, k) for k in keys}
    for k in keys:
        if before[k] == cooled.id:
            assert during[k] == pool.ranked(k, MODEL)[1].id  # its next-ranked account
        else:
            assert during[k] == before[k]  # everyone else stays put
    pool.record_success(cooled)  # it served again (a probe, say)
    assert {k: first(pool, k) for k in keys} == before  # they come back after recovery


def test_select_skips_cooling_accounts_lazily_and_says_why_none_serves(tmp_path):
    pool = _key_pool(tmp_path, n=2)
    top, second = pool.select("k", MODEL).accounts
    resets = time.time() + 3600
    pool.record_failure(second, 429, "usage_limit_reached", resets)
    selection = pool.select("k", MODEL)
    assert next(iter(selection)) == top and selection.cooling == []  # second never reached
    assert selection.ready() == [top]
    pool.record_failure(top, 429, "usage_limit_reached", resets)
    selection = pool.select("k", MODEL)
    assert list(selection) == [] and [r for _, r in selection.cooling] == ["usage_limit_reached"] * 2
    with pytest.raises(GatewayError) as err:
        pool.select("k", MODEL, frozenset({"codex"}))  # the catalog wants another kind
    assert err.value.status == 404 and err.value.code == "model_not_found"


def test_select_without_accounts_names_the_command_to_run(tmp_path):
    with pytest.raises(GatewayError) as err:
        AccountPool(config.load(env=_env(tmp_path))).select("k")
    assert err.value.status == 503 and err.value.code == "no_upstream_account"
    assert "codex-gateway" in err.value.message


def test_models_weights_and_disabled(tmp_path):
    st = FileStore(tmp_path / "state")
    st.save(openai_record("sk-a", label="mini", models=["gpt-5-mini"]))
    st.save(openai_record("sk-b", label="big", weight=3.0))
    st.save(openai_record("sk-c", label="off", disabled=True))
    pool = AccountPool(config.load(env=_env(tmp_path)))
    assert [a.id for a in pool.ranked("k", MODEL)] == ["openai-big"]
    assert {a.id for a in pool.ranked("k", "gpt-5-mini")} == {"openai-big", "openai-mini"}
    wins = [pool.ranked(f"k{i}", "gpt-5-mini")[0].id for i in range(2000)]
    assert 0.70 <= wins.count("openai-big") / 2000 <= 0.80  # weight 3 of 4


def test_openai_api_key_shortcut(tmp_path):
    pool = AccountPool(config.load(env=_env(tmp_path, CODEX_GATEWAY_ACCOUNTS_OPENAI_API_KEY="sk-x")))
    (account,) = pool.accounts()
    assert account.kind == "openai" and account.id.startswith("openai-")
    assert pool.credentials(account).token == "sk-x"


# -- health through the pool ---------------------------------------------------
def _cooldown_in_child(env, queue):
    pool = AccountPool(config.load(env=env))
    queue.put([_until(pool, a) for a in pool.accounts()])


def test_usage_limit_cooldown_is_shared_and_success_clears_it(tmp_path):
    pool = _key_pool(tmp_path, n=1)
    (account,) = pool.accounts()
    resets_at = time.time() + 7200
    pool.record_failure(account, 429, "usage_limit_reached", resets_at)
    assert _until(pool, account) == resets_at
    assert in_child(_cooldown_in_child, _env(tmp_path)) == [resets_at]
    pool.record_success(account, {})
    assert _until(pool, account) is None
    assert in_child(_cooldown_in_child, _env(tmp_path)) == [None]


def test_backoff_table(tmp_path):
    pool = _key_pool(tmp_path, n=1)
    (account,) = pool.accounts()

    def cooled_for(status, retry_at=None):
        pool.record_failure(account, status, None, retry_at)
        return round(_until(pool, account) - time.time())

    assert [cooled_for(502) for _ in range(6)] == [5, 10, 20, 40, 60, 60]
    pool.record_success(account, {})
    assert cooled_for(503) == 5 and cooled_for(500, time.time() + 120) == 120
    assert cooled_for(429) == 30 and cooled_for(403) == 600
    assert cooled_for(429, time.time() + 1000) == 1000


def test_long_cooldown_is_probed_once_for_an_early_reset(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_mod, "PROBE_INTERVAL", 0.2)
    pool = _key_pool(tmp_path, n=1)
    other = AccountPool(pool._cfg)
    (account,) = pool.accounts()
    pool.record_failure(account, 429, "usage_limit_reached", time.time() + 3600)
    assert _until(pool, account) and _until(other, account)
    time.sleep(0.3)
    other.health.snapshot()
    answers = [_until(pool, account), _until(other, account)]
    assert answers.count(None) == 1  # exactly one worker probes
    pool.record_success(account, {})  # the quota had reset early
    assert other.health.snapshot()[account.id]["cooldown_until"] is None


def test_rate_limit_headers_are_recorded(tmp_path, issuer):
    pool, _, _ = _codex_pool(tmp_path, issuer, expired=False)
    (account,) = pool.accounts()
    now = time.time()
    pool.record_success(account, CODEX.rate_limits({"x-codex-primary-used-percent": "12.5",
                                  "x-codex-primary-window-minutes": "300",
                                  "x-codex-primary-reset-at": str(int(now + 600)),
                                  "x-codex-secondary-used-percent": "40",
                                  "x-codex-secondary-reset-after-seconds": "86400"}))
    limits = pool.health.snapshot()[account.id]["rate_limits"]
    assert limits["primary"] == {"used_percent": 12.5, "window_minutes": 300,
                                 "reset_at": float(int(now + 600))}
    assert limits["secondary"]["used_percent"] == 40.0
    assert limits["placement"] == {"level": 3, "draining": False}  # the secondary: 60 % left
    # A reading that leaves the placement standing as it was is written at most every
    # BOOKKEEPING_INTERVAL per worker; one that changes it (above the mark) at once.
    pool.record_success(account, dict(limits, primary={"used_percent": 13.0}))
    assert pool.health.snapshot()[account.id]["rate_limits"] == limits
    pool.record_success(account, CODEX.rate_limits({"x-codex-primary-used-percent": "95"}))
    now_limits = pool.health.snapshot()[account.id]["rate_limits"]
    assert now_limits["primary"]["used_percent"] == 95.0
    assert now_limits["placement"]["draining"] is True
    pool._booked.clear()  # as if the interval had passed
    pool.record_success(account, CODEX.rate_limits({"x-codex-primary-used-percent": "99"}))
    assert pool.health.snapshot()[account.id]["rate_limits"]["primary"]["used_percent"] == 99.0
    assert abs(limits["secondary"]["reset_at"] - (now + 86400)) < 5


def test_new_credentials_in_the_auth_file_lift_needs_login(tmp_path, issuer, monkeypatch):
    toks = issuer.add_account("acct-cli", expired=True)
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"tokens": toks}))
    issuer.set_refresh_state(toks["refresh_token"], "used")  # Codex CLI refreshed it first
    pool = AccountPool(config.load(env=_env(
        tmp_path, issuer, CODEX_GATEWAY_ACCOUNTS_AUTH_FILE=str(auth))))
    (account,) = pool.accounts()
    pool.credentials(account)
    assert pool.ranked("k", MODEL) == [] and pool.ranked("k", MODEL) == []
    auth.write_text(json.dumps({"tokens": issuer.add_account("acct-cli")}))  # `codex login`
    assert [a.id for a in pool.ranked("k", MODEL)] == ["codex-acct-cli"]
    assert len(_refresh_calls(issuer)) == 1


def test_placement_view_shows_each_accounts_headroom_and_share(tmp_path):
    from gateway.usage.quota import placement_text
    from tests.support import quota_reading

    pool = _key_pool(tmp_path)
    for label, used in (("k0", 10), ("k1", 60), ("k2", 92)):
        pool.health.record_rate_limits(f"openai-{label}", quota_reading(used))
    view = pool.placement_view()
    assert [view[f"openai-k{i}"]["standing"] for i in range(3)] == ["open", "open", "draining"]
    shares = [view[f"openai-k{i}"]["share"] for i in range(3)]
    assert shares[0] > shares[1] > shares[2] == 0 and abs(sum(shares) - 1) < 1e-3
    assert placement_text(view["openai-k0"]) == f"{shares[0]:.0%} (headroom " \
        f"{view['openai-k0']['headroom']:g})"
    assert placement_text(view["openai-k2"]) == "0% (draining: above the mark)"
    rows = {r["id"]: r for r in pool.rows()}
    assert rows["openai-k0"]["placement"] == view["openai-k0"]
