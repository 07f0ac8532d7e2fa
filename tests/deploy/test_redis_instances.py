"""Several instances, one Redis (docs/deploy/several-instances.md), all real on 127.0.0.1:

    client ─▶ nginx (shipped server block, two servers in its upstream)
                ├─▶ gateway instance A (gunicorn, 2 workers, its own state dir)
                └─▶ gateway instance B (gunicorn, 2 workers, its own state dir)
                         └── both: [state] backend = "redis" ─▶ redis-server (password, AOF)

Accounts are imported through A's command line only; everything B knows it
reads from Redis.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests import policy_support as checks
from tests.support import ROOT, Gateway, register_secret
from tests.fakes.oauth_issuer import FakeOAuthIssuer
from tests.support import LONG_SYSTEM, Conversation, auth_headers, gateway_env, seed_quota
from tests.redis_server import RedisServer, redis_binary

from .harness import nginx_binary
from .nginx import Nginx

PREFIX = "cgw-test:"


class Cluster:
    def __init__(self, upstream, issuer, tmp_path_factory):
        self.upstream, self.issuer = upstream, issuer
        self.redis = RedisServer(redis_binary(), persist=True, name="redis-instances").start()
        self.instances: list[Gateway] = []
        self.nginx = None
        binary = nginx_binary()
        try:
            for name in ("a", "b"):
                state = tmp_path_factory.mktemp(f"instance-{name}")
                env = gateway_env(upstream, state, CODEX_GATEWAY_OAUTH_ISSUER=issuer.base_url,
                                  CODEX_GATEWAY_OAUTH_TOKEN_URL=issuer.token_url,
                                  CODEX_GATEWAY_STATE_BACKEND="redis",
                                  CODEX_GATEWAY_STATE_REDIS_URL=self.redis.url,
                                  CODEX_GATEWAY_STATE_KEY_PREFIX=PREFIX,
                                  CODEX_GATEWAY_STATE_OUTAGE_WAIT_SECONDS="1")
                env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"] = ""  # refused in Redis mode
                self.instances.append(Gateway(env, workers=2, threads=16,
                                              name=f"instance-{name}").start())
            self.nginx = Nginx(self.a.port, binary=binary)
            self._two_servers()
            self.nginx.start()
        except BaseException:
            self.stop()
            raise

    def _two_servers(self) -> None:
        """The shipped upstream block with instance B's server added next to A's."""
        conf = self.nginx.prefix / "sites-enabled" / "codex-gateway.conf"
        one = f"server 127.0.0.1:{self.a.port};"
        text = conf.read_text()
        assert text.count(one) == 1
        conf.write_text(text.replace(one, f"{one}\n    server 127.0.0.1:{self.b.port};"))

    @property
    def a(self) -> Gateway:
        return self.instances[0]

    @property
    def b(self) -> Gateway:
        return self.instances[1]

    def cli(self, gw: Gateway, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT,
                              env=gw.env, input=stdin, capture_output=True, text=True,
                              timeout=30)

    def import_account(self, account_id: str, expired: bool = False) -> dict:
        """A Codex CLI auth.json imported through instance A's command line."""
        toks = self.issuer.add_account(account_id, expired=expired)
        for k in ("access_token", "refresh_token", "id_token"):
            register_secret(toks[k])
        result = self.cli(self.a, "accounts", "import", "-", stdin=json.dumps({"tokens": toks}))
        assert result.returncode == 0, result.stderr
        return toks

    def record(self, account_id: str) -> dict:
        raw = self.redis.client().hget(PREFIX + "accounts", f"codex-{account_id}")
        return json.loads(raw)

    def served(self) -> list[int]:
        """Requests each instance has answered with a 200 so far (its log lines)."""
        return [len(re.findall(r"request dialect=\S+ transport=\S+ status=200", gw.logs()))
                for gw in self.instances]

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.cleanup()
        for gw in self.instances:
            gw.stop()
        self.redis.cleanup()


@pytest.fixture(scope="module")
def issuer():
    with FakeOAuthIssuer() as srv:
        yield srv


@pytest.fixture(scope="module")
def cluster(upstream, issuer, tmp_path_factory):
    c = Cluster(upstream, issuer, tmp_path_factory)
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _no_accounts(request):
    """Each test starts with an empty Redis (the instances see it on their next read)."""
    if "cluster" in request.fixturenames:
        c = request.getfixturevalue("cluster")
        c.redis.client().flushdb()
        c.issuer.configure(delay=0.0)
    yield


def ask(url: str, conv: str, turn: int = 0, stream: bool = False) -> requests.Response:
    items = [{"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": f"{conv} turn {t}"}]}
             for t in range(turn + 1)]
    body = {"model": "gpt-5-codex", "instructions": LONG_SYSTEM, "input": items,
            "stream": stream}
    return requests.post(url + "/v1/responses", json=body, timeout=30,
                         headers=auth_headers(Connection="close"))


def test_accounts_imported_through_one_instance_are_served_by_both(cluster, upstream):
    cluster.import_account("acct-shared")
    before = cluster.served()
    results = [ask(cluster.nginx.url, f"conv-{i}") for i in range(8)]
    assert [r.status_code for r in results] == [200] * 8, results[0].text
    after = cluster.served()
    assert all(n > b for n, b in zip(after, before)), (before, after)  # nginx used both
    assert ask(cluster.b.url, "direct-b").status_code == 200
    assert {r["headers"]["chatgpt-account-id"] for r in upstream.requests} == {"acct-shared"}
    listed = json.loads(cluster.cli(cluster.b, "accounts", "list", "--json").stdout)
    assert [row["id"] for row in listed] == ["codex-acct-shared"]
    assert not any((gw.env["CODEX_GATEWAY_ACCOUNTS_STATE_DIR"] + "/accounts")
                   and (ROOT / gw.env["CODEX_GATEWAY_ACCOUNTS_STATE_DIR"] / "accounts").exists()
                   for gw in cluster.instances)  # no account files on the instances


def test_sixteen_concurrent_requests_on_an_expired_token_refresh_once(cluster, upstream, issuer):
    old = cluster.import_account("acct-exp", expired=True)
    issuer.configure(delay=0.3)
    version = cluster.redis.client().get(PREFIX + "accounts:ver")
    before = cluster.served()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: ask(cluster.nginx.url, f"conv-{i}"), range(16)))
    assert [r.status_code for r in results] == [200] * 16, results[0].text
    after = cluster.served()
    assert all(n > b for n, b in zip(after, before)), (before, after)  # spread over both
    refreshes = [c for c in issuer.calls if c["grant_type"] == "refresh_token"
                 and c["account"] == "acct-exp"]
    assert len(refreshes) == 1, refreshes
    saved = cluster.record("acct-exp")
    register_secret(saved["refresh_token"])
    register_secret(saved["access_token"])
    assert saved["refresh_token"] == issuer.current_refresh_token("acct-exp") != \
        old["refresh_token"]
    # Stored once: the account records changed exactly one time.
    assert int(cluster.redis.client().get(PREFIX + "accounts:ver")) == int(version) + 1
    assert {r["headers"]["Authorization"] for r in upstream.requests} == \
        {"Bearer " + saved["access_token"]}


def test_conversations_alternating_between_instances_keep_one_envelope_and_hit_the_cache(
        cluster, upstream):
    for name in ("acct-1", "acct-2", "acct-3"):
        cluster.import_account(name)
    for conv in ("alpha", "beta", "gamma"):
        mark = len(upstream.requests)
        for turn in range(4):
            gw = cluster.instances[turn % 2]
            resp = ask(gw.url, conv, turn)
            assert resp.status_code == 200, resp.text
            if turn:
                cached = resp.json()["usage"]["input_tokens_details"]["cached_tokens"]
                assert cached >= 1024, (conv, turn, cached)
        sent = upstream.requests[mark:]
        assert len(sent) == 4
        envelopes = {(r["account"], r["body"]["prompt_cache_key"], r["headers"]["session_id"],
                      r["headers"]["session-id"]) for r in sent}
        assert len(envelopes) == 1, envelopes
        (account, key, session, _), = envelopes
        assert key == session


def test_a_usage_limit_met_through_one_instance_is_honoured_by_the_other(cluster, upstream):
    cluster.import_account("acct-lim")
    upstream.inject("usage_limit", count=1, account="acct-lim", resets_in=300)
    first = ask(cluster.a.url, "limited")
    assert first.status_code == 429
    n = len(upstream.requests)
    for i in range(4):  # both workers of B
        again = ask(cluster.b.url, f"other-{i}")
        assert again.status_code == 429, again.text
        assert 280 <= int(again.headers["Retry-After"]) <= 301
        assert again.json()["error"]["code"] == "usage_limit_reached"
    assert len(upstream.requests) == n  # no second upstream 429


def test_redis_stopped_both_instances_answer_and_sharing_resumes_when_it_is_back(
        cluster, upstream):
    cluster.import_account("acct-up")
    for i in range(4):
        assert ask(cluster.nginx.url, f"warm-{i}").status_code == 200
    time.sleep(1.2)  # an idle worker re-reads the shared state every second too
    outage_lines = [gw.logs().count("is unreachable") for gw in cluster.instances]

    cluster.redis.stop()
    results = [ask(url, f"down-{i}") for i in range(6)
               for url in (cluster.nginx.url, cluster.a.url, cluster.b.url)]
    assert [r.status_code for r in results] == [200] * len(results), \
        [r.text for r in results if r.status_code != 200]
    for gw in cluster.instances:
        health = requests.get(gw.url + "/healthz", timeout=5).json()
        assert health["status"] == "degraded" and health["usable_accounts"] == 1
        assert health["state"]["backend"] == "redis" and health["state"]["ok"] is False
        assert cluster.redis.password not in json.dumps(health)
    # One log line per instance for the whole outage, not one per request or worker.
    assert [gw.logs().count("is unreachable") - n
            for gw, n in zip(cluster.instances, outage_lines)] == [1, 1]

    cluster.redis.start()  # same port, its append-only file: the data is back
    time.sleep(1.2)  # each worker tries Redis again at most once a second
    for i in range(8):
        assert ask(cluster.nginx.url, f"back-{i}").status_code == 200
    for gw in cluster.instances:
        assert gw.logs().count("reachable again") == 1
        health = requests.get(gw.url + "/healthz", timeout=5).json()
        assert health["state"] == {"backend": "redis", "ok": True}
    # Sharing resumed: a limit met through A is honoured by B at once.
    upstream.inject("usage_limit", count=1, account="acct-up", resets_in=120)
    assert ask(cluster.a.url, "after").status_code == 429
    n = len(upstream.requests)
    assert all(ask(cluster.b.url, f"after-{i}").status_code == 429 for i in range(4))
    assert len(upstream.requests) == n
    assert cluster.redis.password not in cluster.a.logs() + cluster.b.logs()


@pytest.fixture
def shared(cluster, upstream):
    """Both instances as one site for the per-key policy checks (tests/policy_support.py):
    requests alternate between them; a key's policy and counters live in Redis."""
    cluster.import_account("acct-policy")  # used from the next request on: no wait
    return checks.Site([cluster.a.url, cluster.b.url], [cluster.a.env, cluster.b.env], upstream)


def test_policy_a_daily_token_budget_stops_within_one_request_across_instances(shared):
    print("2 instances, tokens per day 20000:", checks.check_token_budget(shared))


def test_policy_thirty_requests_per_minute_across_instances(shared):
    checks.check_requests_per_minute(shared)


def test_policy_the_third_concurrent_stream_is_refused_across_instances(shared):
    checks.check_concurrency(shared)


def test_policy_an_expired_key_is_401_on_both_instances(shared):
    checks.check_expired(shared)


def test_policy_a_model_list_is_403_in_every_dialect_on_both_instances(shared):
    checks.check_models(shared)


def test_policy_only_a_show_quota_key_sees_the_quota_on_both_instances(shared):
    checks.check_quota_visibility(shared)


def test_policy_keys_list_and_usage_endpoint_agree_with_the_rows_in_redis(shared):
    checks.check_reports_agree(shared)


def chain_turn(url: str, n: int, previous: str | None) -> requests.Response:
    body = {"model": "gpt-5-codex", "instructions": LONG_SYSTEM,
            "input": [{"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": f"[[say:answer {n}]] question {n}"}]}]}
    if previous:
        body["previous_response_id"] = previous
    return requests.post(url + "/v1/responses", json=body, timeout=30,
                         headers=auth_headers(Connection="close"))


def test_a_previous_response_id_chain_alternates_between_instances(cluster, upstream):
    cluster.import_account("acct-chain")  # every worker sees it on its next request
    previous, mark = None, len(upstream.requests)
    for n in range(5):
        resp = chain_turn(cluster.instances[n % 2].url, n, previous)
        assert resp.status_code == 200, resp.text
        assert resp.json()["output"][0]["content"][0]["text"] == f"answer {n}"
        previous = resp.json()["id"]
    sent = upstream.requests[mark:]
    assert [len(r["body"]["input"]) for r in sent] == [1, 3, 5, 7, 9]
    assert all("previous_response_id" not in r["body"] for r in sent)
    assert len({(r["body"]["prompt_cache_key"], r["headers"]["session_id"]) for r in sent}) == 1
    assert all(r["cached_tokens"] >= 1024 for r in sent[1:])
    got = requests.get(f"{cluster.b.url}/v1/responses/{previous}", headers=auth_headers(),
                       timeout=10)
    assert got.status_code == 200 and got.json()["id"] == previous
    assert cluster.redis.client().exists(PREFIX + "resp:" + previous)


def test_redis_down_chaining_is_a_503_and_plain_requests_are_served(cluster, upstream):
    cluster.import_account("acct-store")
    first = chain_turn(cluster.a.url, 0, None)
    assert first.status_code == 200
    time.sleep(1.2)  # an idle worker re-reads the shared state every second too
    cluster.redis.stop()
    try:
        for gw in cluster.instances:
            plain = chain_turn(gw.url, 1, None)
            assert plain.status_code == 200, plain.text
            chained = chain_turn(gw.url, 1, first.json()["id"])
            assert chained.status_code == 503, chained.text
            error = chained.json()["error"]
            assert error["code"] == "store_unavailable" and chained.headers["Retry-After"]
            assert cluster.redis.password not in chained.text
    finally:
        cluster.redis.start()
    time.sleep(1.2)
    again = chain_turn(cluster.b.url, 1, first.json()["id"])
    assert again.status_code == 200, again.text


def test_the_shipped_redis_settings_start_a_real_redis(tmp_path):
    """deploy/redis/codex-gateway.conf as the Redis host would include it (only the
    address, port, password and directory differ)."""
    srv = RedisServer(redis_binary(), name="redis-shipped")
    shipped = ROOT / "deploy" / "redis" / "codex-gateway.conf"
    conf = tmp_path / "redis.conf"
    conf.write_text(f"include {shipped}\nbind 127.0.0.1\nport {srv.port}\n"
                    f"requirepass {srv.password}\ndir {srv.dir}\n")
    srv.command = lambda: [srv.binary, str(conf), "--daemonize", "no"]
    srv.start()
    try:
        client = srv.client()
        settings = {k: client.config_get(k)[k] for k in
                    ("appendonly", "appendfsync", "maxmemory-policy", "protected-mode")}
        assert settings == {"appendonly": "yes", "appendfsync": "everysec",
                            "maxmemory-policy": "noeviction", "protected-mode": "yes"}
        import redis
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=srv.port).ping()  # no password, no answer
    finally:
        srv.cleanup()


# -- placement on one account set (docs/placement.md) ------------------------------------

def test_placement_by_headroom_is_the_same_on_both_instances(cluster, upstream):
    for name in ("acct-10", "acct-60", "acct-92"):
        cluster.import_account(name)
    seed_quota(cluster.a.env, upstream, {"acct-10": 10, "acct-60": 60, "acct-92": 92})
    placed: dict[str, set] = {}
    for gw in (cluster.a, cluster.b, cluster.a, cluster.b):  # any worker of either instance
        for i in range(60):
            conv = Conversation(f"headroom-{i}")
            assert conv.turn(gw.url).status_code == 200
            placed.setdefault(conv.name, set()).add(conv.accounts(upstream)[-1])
    assert all(len(where) == 1 for where in placed.values()), placed
    counts = Counter(next(iter(where)) for where in placed.values())
    assert counts["acct-92"] == 0 and counts["acct-10"] > counts["acct-60"] > 0, counts


def test_an_account_imported_through_one_instance_is_placed_on_by_both_at_once(
        cluster, upstream):
    for account in ("acct-old", "acct-new"):  # what their headers and usage endpoint say
        upstream.set_quota(account, primary=20, reset_in=4 * 3600)
    cluster.import_account("acct-old")
    for i in range(4):  # both instances know the old account set, their workers warm
        assert ask(cluster.nginx.url, f"warm-{i}").status_code == 200
    cluster.import_account("acct-new")  # and no wait after it (the import reads its quota)
    convs = [Conversation(f"imported-{i}") for i in range(6)]
    for turn in range(4):
        for j, conv in enumerate(convs):  # turns alternate between the instances
            resp = conv.turn(cluster.instances[(turn + j) % 2].url)
            assert resp.status_code == 200, resp.text
    where = {}
    for conv in convs:
        served = conv.served(upstream)
        envelopes = {(r["account"], r["body"]["prompt_cache_key"], r["headers"]["session_id"])
                     for r in served}
        assert len(served) == 4 and len(envelopes) == 1, (conv.name, envelopes)
        where[conv.name] = served[0]["account"]
    assert set(where.values()) == {"acct-old", "acct-new"}, where
    # The old account meets its limit: its conversations fail over on both instances,
    # never to all_accounts_cooling_down (each instance knows the new account).
    upstream.inject("usage_limit", count=1, account="acct-old", resets_in=300)
    for turn in range(2):
        for j, conv in enumerate(convs):
            resp = conv.turn(cluster.instances[(turn + j) % 2].url)
            assert resp.status_code == 200, resp.text
            assert conv.accounts(upstream)[-1] == "acct-new"
