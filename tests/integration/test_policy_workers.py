"""Per-key policy on one gateway of 4 real gunicorn workers: every limit holds
across the workers (the counters live in the state directory's SQLite), each
refusal comes before any upstream request, and only a --show-quota key sees
the account's quota. The same checks run on two instances sharing Redis in
tests/deploy/test_redis_instances.py."""
from __future__ import annotations

import pytest

from tests import policy_support as checks
from tests.support import gateway_env


@pytest.fixture
def site(gateway_factory, upstream, tmp_path):
    upstream.configure(websocket="refuse")
    gw = gateway_factory(gateway_env(upstream, tmp_path, CODEX_GATEWAY_UPSTREAM_READ_TIMEOUT=10,
                                     CODEX_GATEWAY_USAGE_QUOTA_POLL_SECONDS=0), workers=4,
                         threads=8)
    return checks.Site([gw.url], [gw.env], upstream)


def test_a_daily_token_budget_stops_within_one_request(site):
    print("4 workers, tokens per day 20000:", checks.check_token_budget(site))


def test_thirty_requests_per_minute_lets_exactly_thirty_through(site):
    checks.check_requests_per_minute(site)


def test_the_third_concurrent_stream_is_refused_at_once(site):
    checks.check_concurrency(site)


def test_an_expired_key_is_401(site):
    checks.check_expired(site)


def test_a_model_list_is_403_in_every_dialect_and_on_the_websocket(site):
    checks.check_models(site)


def test_only_a_show_quota_key_sees_the_accounts_quota(site):
    checks.check_quota_visibility(site)


def test_keys_list_and_the_usage_endpoint_agree_with_the_usage_rows(site):
    checks.check_reports_agree(site)
