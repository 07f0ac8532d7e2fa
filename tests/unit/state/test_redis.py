"""The Redis state backend against a real redis-server (started here on a free
port, with a password, no persistence unless a test needs a restart to keep
its data). No mocks: every Redis call is a real one."""
from __future__ import annotations

import json
import logging
import multiprocessing
import tempfile
import threading
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import cli as main_cli
from gateway import config
from gateway.state.sqlite_health import SQLiteHealth
from gateway.accounts.pool import AccountPool
from gateway.state.records import codex_record
from gateway.app import create_app
from gateway.errors import GatewayError
from gateway.state import StateUnavailable, open_state
from tests.support import register_secret
from tests.fakes.oauth_issuer import FakeOAuthIssuer
from tests.support import credentials_in_threads
from tests.redis_server import RedisServer, redis_binary

MODEL = "gpt-5"


@pytest.fixture
def own_redis():
    """A server of the test's own, to stop and start (it keeps its data across)."""
    srv = RedisServer(redis_binary(), persist=True, name="redis-outage").start()
    yield srv
    srv.cleanup()


@pytest.fixture
def issuer():
    fake = FakeOAuthIssuer().start()
    yield fake
    fake.stop()


def env_for(srv, tmp_path, instance="a", issuer=None, prefix="p:", **extra) -> dict:
    env = {"CODEX_GATEWAY_STATE_BACKEND": "redis",
           "CODEX_GATEWAY_STATE_REDIS_URL": srv.url,
           "CODEX_GATEWAY_STATE_KEY_PREFIX": prefix,
           "CODEX_GATEWAY_STATE_TIMEOUT_SECONDS": "0.5",
           "CODEX_GATEWAY_STATE_OUTAGE_WAIT_SECONDS": "0.5",
           "CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path / instance)}
    if issuer:
        env["CODEX_GATEWAY_OAUTH_ISSUER"] = issuer.base_url
        env["CODEX_GATEWAY_OAUTH_TOKEN_URL"] = issuer.token_url
    env.update({f"CODEX_GATEWAY_{k.upper()}": str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def prefix():
    return f"t-{uuid.uuid4().hex[:8]}:"


def pool_for(srv, tmp_path, instance="a", watch=None, **kw) -> AccountPool:
    return AccountPool(config.load(env=env_for(srv, tmp_path, instance, **kw)), watch=watch)


def add(pool, issuer, account_id, expired=False) -> dict:
    toks = issuer.add_account(account_id, expired=expired)
    for k in ("access_token", "refresh_token", "id_token"):
        register_secret(toks[k])
    pool.store.save(codex_record(toks))
    return toks


class Commands:
    """The commands any client sends on keys under *prefix* while the ``with`` block
    runs, by name (Redis MONITOR: the server's own counters would also count the
    threads other tests leave behind on the same server)."""

    def __init__(self, srv, prefix: str):
        self.srv, self.prefix = srv, prefix
        self.calls: dict = {}
        self._ready = threading.Event()
        self._stop = f"{prefix}monitor-stop-{uuid.uuid4().hex}"
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> dict:
        self._thread.start()
        assert self._ready.wait(5)
        return self.calls

    def _watch(self) -> None:
        with self.srv.client().monitor() as monitor:
            self._ready.set()
            for seen in monitor.listen():
                name, *args = seen["command"].split()
                if self._stop in args:
                    return
                if any(a.startswith(self.prefix) for a in args):
                    self.calls[name.lower()] = self.calls.get(name.lower(), 0) + 1

    def __exit__(self, *exc) -> None:
        self.srv.client().get(self._stop)  # every command before it has been counted
        self._thread.join(5)


# -- records and the change check ----------------------------------------------------
def test_records_are_shared_and_an_unchanged_read_is_one_get(redis_srv, tmp_path, issuer,
                                                             prefix):
    # No state watch: its reads every second would land among the counted ones.
    a = pool_for(redis_srv, tmp_path, "a", watch=False, prefix=prefix)
    b = pool_for(redis_srv, tmp_path, "b", watch=False, prefix=prefix)
    toks = add(a, issuer, "acct-1")
    assert [r["id"] for r in b.store.records()] == ["codex-acct-1"]
    assert b.store.load("codex-acct-1")["refresh_token"] == toks["refresh_token"]
    assert not (tmp_path / "b" / "accounts").exists()  # nothing on the instance's disk
    b.health.snapshot()

    with Commands(redis_srv, prefix) as calls:
        for _ in range(10):
            assert b.store.load("codex-acct-1")["access_token"] == toks["access_token"]
            b.health.snapshot()
    assert calls.get("hgetall", 0) == 0 and calls["get"] == 20, calls

    new = add(a, issuer, "acct-1")  # a new login through instance a
    assert b.store.load("codex-acct-1")["access_token"] == new["access_token"]
    assert a.store.remove("codex-acct-1") and b.store.records() == []
    assert not a.store.remove("codex-acct-1")


def test_a_cooldown_recorded_by_one_instance_is_honoured_by_the_other(redis_srv, tmp_path,
                                                                      issuer, prefix):
    a = pool_for(redis_srv, tmp_path, "a", prefix=prefix)
    b = pool_for(redis_srv, tmp_path, "b", prefix=prefix)
    add(a, issuer, "acct-1")
    (acct_a,), (acct_b,) = a.accounts(), b.accounts()
    assert b.cooldown_or_claim_probe(acct_b) is None
    resets = time.time() + 300
    a.record_failure(acct_a, 429, "usage_limit_reached", resets)
    assert b.cooldown_or_claim_probe(acct_b) == (resets, "usage_limit_reached")
    assert not b.usable(acct_b)
    b.record_success(acct_b, sent_at=time.time())  # a success sent after the limit: cleared
    assert a.cooldown_or_claim_probe(acct_a) is None


# -- the same changes as the embedded store ------------------------------------------
TIMES = st.floats(0, 100, allow_nan=False)
CHANGES = st.one_of(
    st.tuples(st.just("set_cooldown"),
              st.fixed_dictionaries({"until": TIMES, "reason": st.sampled_from(["a", "b"])})),
    st.tuples(st.just("clear"),
              st.fixed_dictionaries({"login": st.booleans(), "before": st.none() | TIMES})),
    st.tuples(st.just("claim_probe"), st.fixed_dictionaries({"older_than": TIMES})),
    st.tuples(st.just("mark_needs_login"),
              st.fixed_dictionaries({"reason": st.just("r"), "credential": st.just("fp")})),
    st.tuples(st.just("record_rate_limits"),
              st.fixed_dictionaries({"limits": st.just({"primary": {"used_percent": 1.5}}),
                                     "used": st.booleans()})),
    st.tuples(st.just("claim_quota_poll"), st.fixed_dictionaries({"older_than": TIMES})),
    st.tuples(st.sampled_from(["record_used", "record_refresh", "forget"]), st.just({})),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["x", "y"]), CHANGES), max_size=12))
def test_health_changes_match_the_embedded_store(redis_srv, steps):
    """Any sequence of changes leaves Redis and SQLite with the same rows and results."""
    with tempfile.TemporaryDirectory() as tmp:
        env = env_for(redis_srv, Path(tmp), prefix=f"h-{uuid.uuid4().hex}:")
        redis_health = open_state(config.load(env=env)).health
        sqlite_health = SQLiteHealth(Path(tmp) / "health.sqlite")
        clock = [50.0]
        with mock.patch("time.time", lambda: clock[0]):
            for account, (op, args) in steps:
                clock[0] += 1.0
                results = [getattr(h, op)(account, **args) for h in (sqlite_health, redis_health)]
                assert results[0] == results[1], (op, args)
            assert redis_health.snapshot() == sqlite_health.snapshot()


# -- the refresh lock ----------------------------------------------------------------------


def test_refresh_is_single_flight_across_instances(redis_srv, tmp_path, issuer, prefix):
    issuer.configure(delay=0.3)
    first = pool_for(redis_srv, tmp_path, "i0", issuer=issuer, prefix=prefix)
    old = add(first, issuer, "acct-r", expired=True)
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(16), ctx.Queue()
    procs = [ctx.Process(target=credentials_in_threads,
                         args=(env_for(redis_srv, tmp_path, f"i{n}", issuer, prefix), 4,
                               barrier, queue)) for n in range(4)]
    for p in procs:
        p.start()
    seen = [token for _ in procs for token in queue.get(timeout=30)]
    for p in procs:
        p.join(timeout=10)
    assert len([c for c in issuer.calls if c["grant_type"] == "refresh_token"]) == 1
    stored = first.store.load("codex-acct-r")
    register_secret(stored["refresh_token"])
    assert stored["refresh_token"] == issuer.current_refresh_token("acct-r") != old["refresh_token"]
    assert len(seen) == 16 and set(seen) == {stored["access_token"]}


def test_a_dead_refresher_blocks_nobody_beyond_the_ttl(redis_srv, tmp_path, issuer, prefix):
    pool = pool_for(redis_srv, tmp_path, issuer=issuer, prefix=prefix,
                    state_lock_ttl_seconds=1)
    old = add(pool, issuer, "acct-d", expired=True)
    # A refresher that took the lock and died: its token stays until the TTL ends it.
    redis_srv.client().set(f"{prefix}lock:codex-acct-d", "dead", px=1000)
    (account,) = pool.accounts()
    started = time.monotonic()
    token = pool.credentials(account).token
    waited = time.monotonic() - started
    assert 0.5 < waited < 5, waited
    assert token != old["access_token"] and token == pool.store.load("codex-acct-d")["access_token"]
    assert not redis_srv.client().exists(f"{prefix}lock:codex-acct-d")  # released


def test_an_expired_lock_is_not_deleted_from_its_next_holder(redis_srv, tmp_path, prefix,
                                                             caplog):
    store = open_state(config.load(env=env_for(redis_srv, tmp_path, prefix=prefix,
                                               state_lock_ttl_seconds=1))).store
    key = f"{prefix}lock:acct"
    with caplog.at_level(logging.WARNING, "gateway.state"):
        with store.lock("acct"):
            time.sleep(1.2)  # longer than the TTL: another process takes the lock
            assert redis_srv.client().set(key, "theirs", nx=True, px=5000)
    assert redis_srv.client().get(key) == b"theirs"
    assert "its lock had expired" in caplog.text
    with pytest.raises(TimeoutError):
        with store.lock("acct", timeout=0.2):
            pass


# -- Redis unavailable --------------------------------------------------------------------
def test_an_outage_serves_from_memory_logs_once_and_recovers(own_redis, tmp_path, issuer,
                                                             prefix, caplog):
    a = pool_for(own_redis, tmp_path, "a", issuer=issuer, prefix=prefix)
    b = pool_for(own_redis, tmp_path, "b", issuer=issuer, prefix=prefix)
    worker2 = pool_for(own_redis, tmp_path, "a", issuer=issuer, prefix=prefix)  # same instance
    ok = add(a, issuer, "acct-ok")
    add(a, issuer, "acct-exp", expired=True)
    for pool in (a, b, worker2):
        pool.accounts(), pool.health.snapshot()
    own_redis.stop()
    with caplog.at_level(logging.INFO, "gateway.state"):
        for _ in range(20):
            for pool in (a, worker2):
                ranked = pool.ranked("conv", MODEL)
                assert {x.id for x in ranked} == {"codex-acct-ok", "codex-acct-exp"}
        good = next(x for x in ranked if x.id == "codex-acct-ok")
        assert a.credentials(good).token == ok["access_token"]  # no lock needed
        assert a.state_status()["ok"] is False
        a.record_failure(good, 429, "usage_limit_reached", time.time() + 120)
        assert a.cooldown_or_claim_probe(good)  # honoured locally during the outage

        expired = next(x for x in ranked if x.id == "codex-acct-exp")
        started = time.monotonic()
        with pytest.raises(GatewayError) as err:
            a.credentials(expired)
        assert time.monotonic() - started >= 0.4  # waited state.outage_wait_seconds
        assert err.value.status == 503 and err.value.code == "state_store_unavailable"
        assert "Redis" in err.value.message and "refresh" in err.value.message
        assert [c for c in issuer.calls if c["grant_type"] == "refresh_token"] == []
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one instance, one line
        assert own_redis.password not in caplog.text

        own_redis.start()
        time.sleep(1.1)  # the retry interval
        a.health.snapshot()
        worker2.health.snapshot()
    recovered = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(recovered) == 1
    assert a.state_status() == {"backend": "redis", "ok": True}
    # The cooldown recorded during the outage was written: the other instance sees it.
    (other,) = [x for x in b.ranked("conv", MODEL) if x.id == "codex-acct-ok"]
    assert b.cooldown_or_claim_probe(other)[1] == "usage_limit_reached"


def test_requests_queued_behind_a_waiting_refresh_wait_no_longer(own_redis, tmp_path, issuer,
                                                                  prefix):
    """Eight threads of one worker need the same expired token refreshed while Redis is
    down: each gets its 503 within about one outage wait, not one after the other."""
    pool = pool_for(own_redis, tmp_path, issuer=issuer, prefix=prefix)
    add(pool, issuer, "acct-q", expired=True)
    (account,) = pool.accounts()
    own_redis.stop()
    waits, codes = [], []

    def call():
        started = time.monotonic()
        try:
            pool.credentials(account)
        except GatewayError as err:
            codes.append(err.code)
        waits.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == ["state_store_unavailable"] * 8
    assert max(waits) < 2.0, waits  # outage_wait is 0.5 s


def test_a_worker_that_never_reached_redis_answers_503(own_redis, tmp_path, prefix):
    own_redis.stop()
    pool = pool_for(own_redis, tmp_path, prefix=prefix)
    with pytest.raises(GatewayError) as err:
        pool.ranked("conv", MODEL)
    assert err.value.status == 503 and err.value.code == "state_store_unavailable"
    assert pool.accounts() == []
    with pytest.raises(StateUnavailable):
        pool.store.records()


def test_healthz_reports_the_state_store(own_redis, tmp_path, issuer, prefix):
    cfg = config.load(env=env_for(own_redis, tmp_path, prefix=prefix))
    add(AccountPool(cfg), issuer, "acct-h")
    client = create_app(cfg).test_client()
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["state"] == {"backend": "redis", "ok": True}
    own_redis.stop()
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded" and health["accounts"] == 1
    assert health["state"]["ok"] is False and "unreachable" in health["state"]["message"]
    assert own_redis.password not in json.dumps(health)


def test_healthz_on_the_embedded_default(tmp_path):
    cfg = config.load(env={"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path)})
    health = create_app(cfg).test_client().get("/healthz").get_json()
    assert health["state"] == {"backend": "sqlite", "ok": True}


# -- the command line -------------------------------------------------------------------
def run_cli(monkeypatch, env, *argv) -> int:
    for k in list(__import__("os").environ):
        if k.startswith("CODEX_GATEWAY_"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return main_cli.main(list(argv))


def test_accounts_commands_work_against_redis(redis_srv, tmp_path, issuer, prefix,
                                              monkeypatch, capsys):
    toks = issuer.add_account("acct-cli")
    for k in ("access_token", "refresh_token", "id_token"):
        register_secret(toks[k])
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"tokens": toks}))
    env_a = env_for(redis_srv, tmp_path, "a", issuer, prefix)
    env_b = env_for(redis_srv, tmp_path, "b", issuer, prefix)
    assert run_cli(monkeypatch, env_a, "accounts", "import", str(auth)) == 0
    monkeypatch.setenv("OPENAI_KEY", register_secret("sk-cli-0123456789"))
    assert run_cli(monkeypatch, dict(env_a, OPENAI_KEY="sk-cli-0123456789"),
                   "accounts", "add-key", "--label", "api", "--key-env", "OPENAI_KEY") == 0
    capsys.readouterr()
    assert run_cli(monkeypatch, env_b, "accounts", "list", "--json") == 0  # another instance
    listed = json.loads(capsys.readouterr().out)
    assert {r["id"]: r["state"] for r in listed} == {"codex-acct-cli": "ok", "openai-api": "ok"}
    assert run_cli(monkeypatch, env_b, "accounts", "remove", "openai-api") == 0
    assert run_cli(monkeypatch, env_a, "accounts", "remove", "openai-api") == 1
    assert "no account in Redis" in capsys.readouterr().err
    assert [r["id"] for r in pool_for(redis_srv, tmp_path, prefix=prefix).records()] == \
        ["codex-acct-cli"]
    out = capsys.readouterr()
    assert toks["refresh_token"] not in out.out + out.err


def test_accounts_commands_say_when_redis_is_unreachable(own_redis, tmp_path, prefix,
                                                         monkeypatch, capsys):
    own_redis.stop()
    env = env_for(own_redis, tmp_path, prefix=prefix)
    assert run_cli(monkeypatch, env, "accounts", "list") == 1
    err = capsys.readouterr().err
    assert "unreachable" in err and f"127.0.0.1:{own_redis.port}" in err
    assert own_redis.password not in err
    assert run_cli(monkeypatch, env, "check") == 0
    out = capsys.readouterr().out
    assert "state redis at redis://:***@127.0.0.1" in out and own_redis.password not in out


def test_state_migrate_copies_the_embedded_state(redis_srv, tmp_path, issuer, prefix,
                                                 monkeypatch, capsys):
    env = env_for(redis_srv, tmp_path, issuer=issuer, prefix=prefix)
    env["CODEX_GATEWAY_STATE_BACKEND"] = "sqlite"  # before the switch
    embedded = AccountPool(config.load(env=env))
    for name in ("acct-m1", "acct-m2"):
        toks = issuer.add_account(name)
        register_secret(toks["refresh_token"])
        register_secret(toks["access_token"])
        embedded.store.save(codex_record(toks, label=name))
    embedded.health.mark_needs_login("codex-acct-m2", "refresh_token_reused", "fp")
    embedded.health.set_cooldown("codex-acct-m1", time.time() + 300, "usage_limit_reached")

    assert run_cli(monkeypatch, env, "state", "migrate", "--to", "redis") == 0
    assert "2 account(s) copied" in capsys.readouterr().out
    shared = pool_for(redis_srv, tmp_path, "other", prefix=prefix)
    assert {r["id"]: r["label"] for r in shared.records()} == {
        "codex-acct-m1": "acct-m1", "codex-acct-m2": "acct-m2"}
    assert shared.health.state("codex-acct-m2")["needs_login"]
    assert shared.health.state("codex-acct-m1")["reason"] == "usage_limit_reached"
    assert shared.store.load("codex-acct-m1")["refresh_token"] == \
        embedded.store.load("codex-acct-m1")["refresh_token"]

    assert run_cli(monkeypatch, env, "state", "migrate", "--to", "redis") == 0
    assert "kept codex-acct-m1" in capsys.readouterr().out  # Redis may be newer
    assert run_cli(monkeypatch, env, "state", "migrate", "--to", "redis", "--overwrite") == 0
    assert "2 account(s) copied" in capsys.readouterr().out


def test_usage_rows_are_shared_through_redis(redis_srv, tmp_path, prefix):
    """Two instances write usage rows to one Redis; either one's `usage` sees all."""
    from gateway.usage.records import UsageRow, aggregate
    from gateway.usage.store import open_usage

    def row(ts, key, cached, status=200, outcome="completed"):
        return UsageRow(ts=ts, key_id=key, account="codex-a", dialect="chat", transport="http",
                        model_asked="gpt-5.5", model_sent="gpt-5.5", continuity="client_session",
                        status=status, outcome=outcome, error_code=None, input_tokens=100,
                        cached_tokens=cached, output_tokens=5, reasoning_tokens=0,
                        ttfb_ms=10.0, duration_ms=20.0)

    a = open_usage(config.load(env=env_for(redis_srv, tmp_path, "a", prefix=prefix)))
    b = open_usage(config.load(env=env_for(redis_srv, tmp_path, "b", prefix=prefix)))
    now = time.time()
    rows_a = [row(now - 10, "k1", 50), row(now - 10, "k1", 50)]  # identical rows stay two
    rows_b = [row(now - 5, "k2", 0, 429, "upstream_error"), row(now - 9 * 86400, "k2", 0)]
    a.add(rows_a)
    b.add(rows_b)
    assert b.query(now - 86400, "key") == aggregate(rows_a + rows_b[:1], "key")
    assert [r.key_id for r in a.recent_errors(now - 86400)] == ["k2"]
    assert a.prune(now - 86400) == 1
    assert sum(g.requests for g in a.query(0, "total")) == 3


def test_both_health_stores_have_the_whole_interface():
    """The quota poll once existed only in SQLite: with Redis its thread died."""
    import inspect

    from gateway.state.base import HealthStore
    from gateway.state.redis import RedisHealth
    for name, member in vars(HealthStore).items():
        if callable(member) and not name.startswith("_"):
            for impl in (SQLiteHealth, RedisHealth):
                assert inspect.signature(getattr(impl, name)) == inspect.signature(member), \
                    (impl.__name__, name)


def _claim(marker, barrier, results):
    from gateway.state.link import Link
    link = Link("redis://127.0.0.1:9/0", 0.1, marker=marker)
    barrier.wait()
    results.put(link._claim_marker())


def test_workers_seeing_an_outage_at_once_log_it_once(tmp_path):
    """Siblings (same parent) race for the outage marker: exactly one wins, every time."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(10):
        marker = tmp_path / f"outage-{round_}"
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_claim, args=(marker, barrier, results)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(10)
        assert sorted(results.get(timeout=5) for _ in procs) == [False] * 5 + [True]


def test_the_fetched_model_catalog_is_shared_through_redis(redis_srv, tmp_path, prefix):
    """Two instances (state dirs of their own) see one catalog copy in Redis."""
    from gateway.upstream.catalog import store_for
    a_cfg = config.load(env=env_for(redis_srv, tmp_path, "a", prefix=prefix))
    b_cfg = config.load(env=env_for(redis_srv, tmp_path, "b", prefix=prefix))
    a = store_for(a_cfg, AccountPool(a_cfg).state)
    b = store_for(b_cfg, AccountPool(b_cfg).state)
    data = {"fetched_at": 1.0, "accounts": {"x": {"kind": "codex", "models": [{"slug": "m"}]}}}
    a.save(data)
    assert b.load() == data
    assert not (tmp_path / "b" / "catalog.json").exists()
