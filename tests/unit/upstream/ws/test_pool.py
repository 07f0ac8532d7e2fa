"""A worker's idle upstream sockets: bounds, idle expiry, probes, what each holds."""
from __future__ import annotations

import time

import pytest

from gateway.upstream.ws import pool as sockets
from gateway.upstream.ws.delta import hold
from tests.unit.upstream.ws.test_delta import SENT, backend_message
from gateway.upstream.ws.pool import Conversation, SocketPool


class FakeSocket:
    def __init__(self, clock, alive=True, pong=True):
        self.closed = False
        self.close_code = None
        self.aborted = False
        self._alive, self._pong = alive, pong
        self.pings = 0
        self.last_used = self.last_heard = clock()

    def alive(self):
        return self._alive and not self.closed

    def probe(self, timeout):
        return self._pong

    def ping(self):
        self.pings += 1

    def close(self, code=1000):
        self.closed, self.close_code = True, code

    def abort(self):
        self.closed = self.aborted = True


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def conv(clock, key, **kw):
    return Conversation(FakeSocket(clock, **kw), key)


def test_a_socket_is_reused_by_its_key_only(clock):
    pool = SocketPool(4, 300, clock=clock)
    a = conv(clock, ("acct", "k1"))
    pool.checkin(a)
    assert pool.checkout(("acct", "k2")) is None
    assert pool.checkout(("other", "k1")) is None
    assert pool.checkout(("acct", "k1")) is a
    assert pool.checkout(("acct", "k1")) is None  # checked out: one request at a time
    pool.close_all()


def test_the_pool_keeps_at_most_max_sockets_least_recently_used_out_first(clock):
    pool = SocketPool(2, 300, clock=clock)
    convs = [conv(clock, ("acct", f"k{i}")) for i in range(3)]
    for i, c in enumerate(convs):
        clock.now += 1
        pool.checkin(c)
    assert len(pool) == 2
    assert convs[0].socket.closed and not convs[1].socket.closed
    assert pool.checkout(("acct", "k0")) is None
    assert pool.checkout(("acct", "k2")) is convs[2]
    pool.close_all()
    assert convs[1].socket.closed


def test_idle_sockets_expire(clock):
    pool = SocketPool(8, 300, clock=clock)
    old, new = conv(clock, ("a", "old")), conv(clock, ("a", "new"))
    pool.checkin(old)
    clock.now += 200
    pool.checkin(new)
    clock.now += 101  # old: idle 301 s, new: 101 s
    assert pool.sweep() == 1
    assert old.socket.closed and old.socket.close_code == 1001
    new.socket.last_heard = clock.now  # it answered the reaper's pings
    assert pool.checkout(("a", "new")) is new
    assert pool.checkout(("a", "old")) is None


def test_sockets_a_conversation_used_at_once_are_all_kept_newest_first(clock):
    pool = SocketPool(8, 300, clock=clock)
    first, second = conv(clock, ("a", "k")), conv(clock, ("a", "k"))
    pool.checkin(first)
    pool.checkin(second)  # two requests of one conversation ran at once
    assert not first.socket.closed and len(pool) == 2 and pool.idle(("a", "k")) == 2
    assert pool.checkout(("a", "k")) is second
    assert pool.checkout(("a", "k")) is first
    assert pool.checkout(("a", "k")) is None and len(pool) == 0


def test_one_keys_sockets_count_against_the_bound_least_recently_used_out_first(clock):
    pool = SocketPool(2, 300, clock=clock)
    a1, a2, b = conv(clock, ("a", "k")), conv(clock, ("a", "k")), conv(clock, ("b", "k"))
    for c in (a1, a2, b):
        clock.now += 1
        pool.checkin(c)
    assert a1.socket.closed and not a2.socket.closed and len(pool) == 2
    assert pool.checkout(("a", "k")) is a2 and pool.checkout(("a", "k")) is None
    clock.now += 301
    assert pool.sweep() == 1 and b.socket.closed and len(pool) == 0


def test_dead_and_silent_sockets_are_not_reused(clock):
    pool = SocketPool(8, 300, clock=clock)
    dead = conv(clock, ("a", "dead"), alive=False)
    silent = conv(clock, ("a", "silent"), pong=False)
    answering = conv(clock, ("a", "answering"))
    closed = conv(clock, ("a", "closed"))
    closed.socket.closed = True
    for c in (dead, silent, answering, closed):
        pool.checkin(c)
    assert len(pool) == 3  # a closed socket is never kept
    clock.now += sockets.PROBE_AFTER + 1  # silent for long: probed before reuse
    assert pool.checkout(("a", "dead")) is None and dead.socket.aborted
    assert pool.checkout(("a", "silent")) is None and silent.socket.aborted
    assert pool.checkout(("a", "answering")) is answering


def test_keepalive_pings_quiet_sockets_and_drops_dead_ones(clock):
    pool = SocketPool(8, 300, clock=clock)
    quiet, dead = conv(clock, ("a", "q")), conv(clock, ("a", "d"), alive=False)
    pool.checkin(quiet)
    pool.checkin(dead)
    clock.now += sockets.REAP_EVERY
    pool.keepalive()
    assert quiet.socket.pings == 1 and dead.socket.aborted and len(pool) == 1
    pool.close_all()


def test_the_reaper_closes_expired_sockets_without_any_request():
    pool = SocketPool(8, 0.2)
    c = Conversation(FakeSocket(time.monotonic), ("a", "k"))
    pool.checkin(c)
    deadline = time.monotonic() + 5
    while not c.socket.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.socket.closed and len(pool) == 0


def test_what_a_socket_holds_is_replaced_or_forgotten(clock):
    c = conv(clock, ("a", "k"))
    c.remember("resp_1", [hold(i) for i in SENT], [backend_message("hi")])
    assert c.response_id == "resp_1" and len(c.sent) == 2 and c.output == (
        hold(backend_message("hi")),)
    c.remember(None, [], [])
    assert c.response_id is None and c.sent == () and c.output == ()
