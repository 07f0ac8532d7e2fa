"""Quota windows: the usage endpoint's answer (tolerantly), staleness, display, the poller."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway import config as config_mod
from gateway.usage import quota

NOW = 1_796_000_000.0


@pytest.mark.parametrize("payload, windows, plan", [
    # the shape peers report
    ({"plan_type": "plus", "rate_limit": {
        "primary_window": {"used_percent": 6, "limit_window_seconds": 18000, "reset_at": NOW + 60},
        "secondary_window": {"used_percent": 24, "limit_window_seconds": 604800,
                             "reset_after_seconds": 3600}}},
     {"primary": {"used_percent": 6.0, "window_minutes": 300, "reset_at": NOW + 60},
      "secondary": {"used_percent": 24.0, "window_minutes": 10080, "reset_at": NOW + 3600}},
     "plus"),
    # other spellings: rate_limits, bare names, minutes, ms and ISO resets, numeric strings
    ({"rate_limits": {"primary": {"used_percent": "12.5", "window_minutes": 300,
                                  "resets_at": (NOW + 10) * 1000},
                      "secondary": {"usedPercent": 50, "resets_at": "2026-11-30T00:00:00Z"}}},
     {"primary": {"used_percent": 12.5, "window_minutes": 300, "reset_at": NOW + 10},
      "secondary": {"used_percent": 50.0, "reset_at": 1796000000.0 - 1796000000 % 86400}},
     None),
    # windows at the top level, one of them only
    ({"primary_window": {"used_percent": 99, "resets_in_seconds": 5}, "plan": "pro"},
     {"primary": {"used_percent": 99.0, "reset_at": NOW + 5}}, "pro"),
    # nothing usable
    ({"rate_limit": {"primary_window": {"limit_window_seconds": 18000}}}, {}, None),
    ({"rate_limit": None}, {}, None),
    ({"rate_limit": "limited"}, {}, None),
    ([], {}, None),
    (None, {}, None),
    ({"rate_limit": {"primary_window": {"used_percent": True, "reset_at": "soon"}}}, {}, None),
    ({"rate_limit": {"primary_window": {"used_percent": float("nan")}}}, {}, None),
])
def test_parse_usage_is_tolerant(payload, windows, plan):
    assert quota.parse_usage(payload, NOW) == (windows, plan)


@pytest.mark.parametrize("limits, stale", [
    (None, True), ({}, True), ({"primary": {"used_percent": 1}}, True),
    ({"observed_at": NOW - 299}, False), ({"observed_at": NOW - 300}, True),
])
def test_staleness(limits, stale):
    assert quota.is_stale(limits, NOW, 300) is stale


@pytest.mark.parametrize("window, name, text", [
    (None, "primary", "-"),
    ({"used_percent": 12.0, "window_minutes": 300, "reset_at": NOW + 3900}, "primary",
     "12% of 5h, resets in 1h05m"),
    ({"used_percent": 34.5, "window_minutes": 10080, "reset_at": NOW + 3 * 86400 + 7200},
     "secondary", "34.5% of 7d, resets in 3d2h"),
    ({"used_percent": 100, "window_minutes": 90}, "primary", "100% of 90m"),
    ({"used_percent": 5}, "secondary", "5% of week?"),
    ({"used_percent": 5, "reset_at": NOW - 5}, "primary", "5% of 5h?, resets in now"),
])
def test_format_window(window, name, text):
    assert quota.format_window(window, name, NOW) == text


@dataclass(frozen=True)
class Acct:
    id: str
    kind: str = "codex"


@dataclass(frozen=True)
class Creds:
    token: str
    account_id: str | None = None


class FakeHealth:
    def __init__(self, snap):
        self.snap, self.claims, self.recorded = snap, {}, {}

    def snapshot(self):
        return self.snap

    def claim_quota_poll(self, account_id, older_than):
        if self.claims.get(account_id, 0) > older_than:
            return False
        self.claims[account_id] = NOW
        return True

    def record_rate_limits(self, account_id, limits, used=True):
        assert used is False
        self.recorded[account_id] = limits


class FakePool:
    def __init__(self, accounts, snap):
        self._accounts, self.health = accounts, FakeHealth(snap)

    def accounts(self):
        return self._accounts

    def record_limits(self, account_id, limits):
        self.health.record_rate_limits(account_id, limits, used=False)

    def stored_credentials(self, account):
        return None if account.id == "expiring" else Creds("tok-" + account.id,
                                                          "chatgpt-" + account.id)


def poller(pool, answers, **usage):
    env = {"CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": "http://127.0.0.1:9/backend-api/codex"}
    env.update({f"CODEX_GATEWAY_USAGE_{k.upper()}": str(v) for k, v in usage.items()})
    cfg = config_mod.load(env=env)
    calls = []

    def get(url, headers, timeout):
        calls.append((url, headers))
        return answers.pop(0)
    return quota.QuotaPoller(cfg, pool, get=get, clock=lambda: NOW), calls


def test_the_poller_asks_only_for_stale_codex_accounts_once_per_interval():
    fresh = {"observed_at": NOW - 10, "primary": {"used_percent": 1.0}}
    pool = FakePool([Acct("a"), Acct("b"), Acct("k", "openai"), Acct("n")],
                    {"a": {"rate_limits": fresh}, "n": {"needs_login": True}})
    answer = {"rate_limit": {"primary_window": {"used_percent": 40, "reset_after_seconds": 60}},
              "plan_type": "team"}
    p, calls = poller(pool, [(200, answer)])
    assert [a.id for a in p.due()] == ["b"]
    assert p.poll(Acct("b")) is True
    url, headers = calls[0]
    assert url == "http://127.0.0.1:9/backend-api/wham/usage"
    assert headers["Authorization"] == "Bearer tok-b"
    assert headers["chatgpt-account-id"] == "chatgpt-b"
    limits = pool.health.recorded["b"]
    assert limits["primary"] == {"used_percent": 40.0, "reset_at": NOW + 60}
    assert limits["source"] == "usage_endpoint" and limits["observed_at"] == NOW
    assert limits["plan_type"] == "team"
    assert p.poll(Acct("b")) is False and len(calls) == 1  # claimed: not again this interval


@pytest.mark.parametrize("answer", [(404, None), (200, {"detail": "nope"}), (200, None)])
def test_an_unusable_answer_changes_nothing(answer):
    pool = FakePool([Acct("b")], {})
    p, _ = poller(pool, [answer])
    assert p.poll(Acct("b")) is False and pool.health.recorded == {}


def test_an_unreachable_endpoint_is_not_an_error():
    pool = FakePool([Acct("b")], {})
    p, _ = poller(pool, [])  # pop from an empty list: the get raises
    assert p.poll(Acct("b")) is False


def test_a_token_about_to_expire_is_left_to_the_request_path():
    pool = FakePool([Acct("expiring")], {})
    p, calls = poller(pool, [(200, {})])
    assert p.poll(Acct("expiring")) is False and calls == []


def test_polling_can_be_turned_off():
    pool = FakePool([Acct("b")], {})
    p, _ = poller(pool, [], quota_poll_seconds=0)
    assert p.due() == []


@pytest.mark.parametrize("base, url", [
    ("https://chatgpt.com/backend-api/codex", "https://chatgpt.com/backend-api/wham/usage"),
    ("https://chatgpt.com/backend-api/codex/", "https://chatgpt.com/backend-api/wham/usage"),
    ("http://127.0.0.1:8/backend-api", "http://127.0.0.1:8/backend-api/wham/usage"),
    ("http://proxy:8/some/codex", "http://proxy:8/backend-api/wham/usage"),
])
def test_the_usage_url_is_derived_from_the_codex_base_url(base, url):
    assert config_mod.derive_usage_url(base) == url
    cfg = config_mod.load(env={"CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": base,
                               "CODEX_GATEWAY_UPSTREAM_CODEX_USAGE_URL": ""})
    assert cfg.upstream.usage_url == url
    cfg = config_mod.load(env={"CODEX_GATEWAY_UPSTREAM_CODEX_USAGE_URL": "http://x/u"})
    assert cfg.upstream.usage_url == "http://x/u"


def test_a_failing_state_store_skips_the_poll_and_the_thread_never_raises(caplog):
    """A claim that fails (SQLite's disk I/O error, Redis unreachable) is one warning
    line: the poll is skipped, no traceback from the poll thread."""
    import sqlite3

    pool = FakePool([Acct("b")], {})

    def broken(account_id, older_than):
        raise sqlite3.OperationalError("disk I/O error")
    pool.health.claim_quota_poll = broken
    p, calls = poller(pool, [(200, {})])
    with caplog.at_level("WARNING", logger="gateway.usage"):
        assert p.poll(Acct("b")) is False
        p._running.acquire()
        p._poll_all([Acct("b")])  # what check()'s thread runs: returns, releases its lock
    assert calls == [] and p._running.acquire(blocking=False)
    assert [r.getMessage() for r in caplog.records if r.name == "gateway.usage"] == [
        "account b: quota poll skipped, the state store failed (OperationalError)"] * 2
