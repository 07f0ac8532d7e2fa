"""Quota-aware placement under real gunicorn (4 workers), the fake Codex backend
reporting each account's quota windows in its x-codex-* headers (docs/placement.md)."""
from __future__ import annotations

import re
from collections import Counter

from tests.support import Conversation, accounts_env, seed_quota

ACCOUNTS = ("acct-a", "acct-b", "acct-c")


def start(gateway_factory, upstream, tmp_path, used: dict, accounts=ACCOUNTS, **settings):
    env = accounts_env(upstream, tmp_path, accounts)
    env.update({f"CODEX_GATEWAY_{k.upper()}": str(v) for k, v in settings.items()})
    seed_quota(env, upstream, used)
    return gateway_factory(env, workers=4, threads=8)


def test_new_conversations_go_where_the_headroom_is_the_same_on_every_worker(
        gateway_factory, upstream, tmp_path):
    gw = start(gateway_factory, upstream, tmp_path, {"acct-a": 10, "acct-b": 60, "acct-c": 92})
    placed = {}
    for rnd in range(2):  # each request on a new connection: any of the four workers
        for i in range(60):
            conv = Conversation(f"new-{i}")
            assert conv.turn(gw.url).status_code == 200
            placed.setdefault(conv.name, []).append(conv.accounts(upstream)[-1])
    assert all(len(set(where)) == 1 for where in placed.values()), placed
    counts = Counter(where[0] for where in placed.values())
    assert counts["acct-c"] == 0, counts
    assert counts["acct-a"] > counts["acct-b"] > 0, counts
    assert re.search(r"placement=headroom", gw.logs())
    print("placement 10/60/92 %:", dict(counts))


def test_conversations_below_the_mark_keep_their_account_and_cache_for_ten_turns(
        gateway_factory, upstream, tmp_path):
    gw = start(gateway_factory, upstream, tmp_path, {"acct-a": 20, "acct-b": 45, "acct-c": 70})
    convs = [Conversation(f"steady-{i}") for i in range(6)]
    for _ in range(10):
        for conv in convs:
            assert conv.turn(gw.url).status_code == 200
    for conv in convs:
        served = conv.served(upstream)
        assert len(served) == 10
        envelopes = {(r["account"], r["body"]["prompt_cache_key"], r["headers"]["session_id"])
                     for r in served}
        assert len(envelopes) == 1, (conv.name, envelopes)
        assert all(r["cached_tokens"] >= 1024 for r in served[1:]), conv.name
    assert "placement=sticky" in gw.logs()
    assert "placement=high_water" not in gw.logs() and "placement=failover" not in gw.logs()


def test_an_account_crossing_the_mark_moves_each_conversation_once_without_a_429(
        gateway_factory, upstream, tmp_path):
    gw = start(gateway_factory, upstream, tmp_path, {"acct-a": 86, "acct-b": 86, "acct-c": 86})
    convs = [Conversation(f"crossing-{i}") for i in range(9)]
    for conv in convs:
        assert conv.turn(gw.url).status_code == 200
    first = {c.name: c.accounts(upstream)[0] for c in convs}
    filling = Counter(first.values()).most_common(1)[0][0]
    # From now on each answer of that account uses 2 more points: the mark (90 %)
    # after its next two answers, its limit (100 %: a 429) after seven.
    upstream.set_quota(filling, primary=86, reset_in=4 * 3600, fill=2)
    for _ in range(7):
        for conv in convs:
            assert conv.turn(gw.url).status_code == 200  # no client sees a 429
    for conv in convs:
        where = conv.accounts(upstream)
        assert len(where) == 8, (conv.name, where)
        changes = sum(1 for x, y in zip(where, where[1:]) if x != y)
        if first[conv.name] == filling:
            assert changes == 1, (conv.name, where)  # moved exactly once, and stayed
            assert where[-1] != filling
        else:
            assert changes == 0, (conv.name, where)  # nobody else moved
    assert not [r for r in upstream.requests if r["status"] == 429]
    assert "placement=high_water" in gw.logs()
    # The moved conversations' turns on their new account succeeded although their
    # history holds reasoning the old account encrypted: it was left out before the
    # first request there (the fake refuses it, as the backend does), never refused.
    assert not [r for r in upstream.requests if r["status"] == 400], \
        [r["id"] for r in upstream.requests if r["status"] == 400]


def test_an_account_at_its_limit_gets_no_request(gateway_factory, upstream, tmp_path):
    gw = start(gateway_factory, upstream, tmp_path, {"acct-a": 100, "acct-b": 30, "acct-c": 95})
    for i in range(20):
        assert Conversation(f"full-{i}").turn(gw.url).status_code == 200
    served = Counter(r["account"] for r in upstream.requests)
    assert served["acct-a"] == 0, served
    assert served["acct-b"] == 20, served  # acct-c is above the mark: none new
