"""gateway.state.redis
~~~~~~~~~~~~~~~~~~~~~~~
Account records, health and the refresh lock in one Redis, for several
instances behind one load balancer (docs/deploy/several-instances.md).

Keys (``state.key_prefix``, default ``codex-gateway:``, in front of each):

================  ==============================================================
``accounts``      hash: account id → record JSON (tokens, label, weight, models)
``accounts:ver``  counter, incremented by every account write
``health``        hash: account id → health row JSON (:mod:`.rows`)
``health:ver``    counter, incremented by every health write
``lock:<id>``     the refresh lock of one account: a random token, with a TTL
================  ==============================================================

Reads are cheap per request, like SQLite's ``data_version``: each process
keeps the last snapshot of a hash with the counter it was read at, and one
``GET`` of the counter says whether it must be read again. There is no
staleness window, so a cooldown one instance records is honoured by every
other on its very next request.

When Redis cannot be reached, reads are served from those snapshots (health
fails open: what was last known), health writes are applied to the snapshot
and replayed when Redis is back, and nothing refreshes a token: without the
lock two instances could both spend the same refresh token, and the second
would lose the login (``refresh_token_reused``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time

import redis

from . import rows
from .errors import StateUnavailable
from .link import Link
from .records import safe_id

log = logging.getLogger("gateway.state")

_NEVER = object()  # a snapshot never read
LOCK_POLL = 0.02   # s between tries while another process holds a refresh lock
PENDING_MAX = 1000  # health changes kept for replay during an outage
# Deletes the lock only if it still holds our token: after a TTL expiry another
# refresher may own it, and deleting theirs would let a third one in.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _Snapshot:
    """One hash as this process last read it, re-read when its counter moved."""

    def __init__(self, link: Link, key: str, decode):
        self.link, self.key, self.vkey, self.decode = link, key, key + ":ver", decode
        self.version = _NEVER
        self.data: dict = {}
        self.loaded = False  # read from Redis at least once
        self._mutex = threading.Lock()

    def read(self, strict: bool = False) -> dict:
        """The current contents; on an outage the last ones (``strict``: raise
        StateUnavailable if nothing was ever read)."""
        try:
            version = self.link.run(lambda r: r.get(self.vkey))
            if self.version is not _NEVER and version == self.version:
                return self.data
            version, raw = self.link.run(self._fetch)
        except StateUnavailable:
            if strict and not self.loaded:
                raise
            return self.data
        data = {}
        for key, value in raw.items():
            try:
                item = self.decode(json.loads(value))
            except (ValueError, TypeError):
                log.warning("state store: %s of %r is not valid JSON; ignored", self.key, key)
                continue
            if item is not None:
                data[key.decode()] = item
        with self._mutex:
            self.version, self.data, self.loaded = version, data, True
        return data

    def _fetch(self, r):
        pipe = r.pipeline(transaction=True)
        pipe.get(self.vkey)
        pipe.hgetall(self.key)
        return pipe.execute()

    def put_local(self, key: str, value) -> None:
        """Change this process's copy only (an outage); the next read that reaches
        Redis replaces it."""
        with self._mutex:
            data = dict(self.data)
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            self.data, self.version = data, _NEVER


def bump(pipe, vkey: str) -> None:
    """Move a change counter (in a MULTI). A missing counter (a new, flushed or
    restarted-empty Redis) starts at a random value, so it never comes back to
    the value a process cached before and hides the change."""
    pipe.set(vkey, secrets.randbelow(1 << 48), nx=True)
    pipe.incr(vkey)


def _record(data):
    return data if isinstance(data, dict) and data.get("kind") in ("codex", "openai") else None


class RedisStore:
    """:class:`~.base.AccountStore` on one Redis hash."""

    auth_file = None  # config refuses the auth_file shortcut in Redis mode

    def __init__(self, link: Link, prefix: str, lock_ttl: float = 60.0,
                 outage_wait: float = 5.0):
        self.link = link
        self.key = prefix + "accounts"
        self.lock_prefix = prefix + "lock:"
        self.lock_ttl, self.outage_wait = lock_ttl, outage_wait
        self._snap = _Snapshot(link, self.key, _record)

    def records(self) -> list[dict]:
        """Every account record; raises StateUnavailable only when this process has
        never read them (serving from memory is only fair if there is a memory)."""
        data = self._snap.read(strict=True)
        return [dict(data[k], id=k) for k in sorted(data)]

    def load(self, account_id: str) -> dict | None:
        rec = self._snap.read().get(account_id)
        return dict(rec, id=account_id) if rec else None

    def save(self, rec: dict) -> None:
        """Write a record (one source of truth for every instance). On an outage
        the record is kept in this process's memory and StateUnavailable raised."""
        ident = safe_id(rec["id"])
        clean = {k: v for k, v in rec.items() if k != "source"}
        clean["id"] = ident
        text = json.dumps(clean, sort_keys=True)

        def write(r):
            pipe = r.pipeline(transaction=True)
            pipe.hset(self.key, ident, text)
            bump(pipe, self._snap.vkey)
            pipe.execute()

        try:
            self.link.run(write)
        except StateUnavailable:
            self._snap.put_local(ident, clean)
            raise

    def remove(self, account_id: str) -> bool:
        def delete(r):
            pipe = r.pipeline(transaction=True)
            pipe.hdel(self.key, account_id)
            bump(pipe, self._snap.vkey)
            return pipe.execute()[0]

        return bool(self.link.run(delete))

    def reachable(self) -> bool:
        return self.link.reachable()

    @contextlib.contextmanager
    def lock(self, account_id: str, timeout: float | None = None):
        """The account's refresh lock, across every instance.

        ``SET key token NX PX ttl``: a refresher that dies (killed, host gone)
        blocks nobody beyond the TTL, which is longer than a refresh can take
        (the issuer call times out after 35 s). While another process holds it,
        wait up to *timeout* (default: the TTL, after which a dead holder's lock
        has expired) and raise TimeoutError. While Redis is unreachable, wait up
        to ``outage_wait`` and raise StateUnavailable: no refresh without the lock.
        """
        key = self.lock_prefix + safe_id(account_id)
        token = secrets.token_hex(16)
        ttl_ms = int(self.lock_ttl * 1000)
        start = time.monotonic()
        contention = start + (self.lock_ttl + 1 if timeout is None else timeout)
        outage = None
        while True:
            try:
                if self.link.run(lambda r: r.set(key, token, nx=True, px=ttl_ms)):
                    break
                outage = None
                if time.monotonic() > contention:
                    raise TimeoutError(f"account {account_id} is locked by another refresh")
            except StateUnavailable:
                # Bounded for every request: counted from this request's first failure
                # or from the outage's start, whichever is earlier, so requests queued
                # behind one waiting refresher do not wait one after the other.
                now = time.monotonic()
                outage = outage or now
                if max(now - outage, self.link.down_for()) >= self.outage_wait:
                    raise
                time.sleep(min(0.2, self.outage_wait))
                continue
            time.sleep(LOCK_POLL)
        try:
            yield
        finally:
            try:
                held = self.link.run(lambda r: r.eval(_RELEASE, 1, key, token))
            except StateUnavailable:
                held = 1  # it expires on its own
            if not held:
                log.warning("account %s: the refresh took longer than state.lock_ttl_seconds "
                            "(%g s); its lock had expired", account_id, self.lock_ttl)


# Claim the quota poll of ARGV[1] at ARGV[2] unless someone did after ARGV[3].
CLAIM_POLL = """
local t = redis.call('HGET', KEYS[1], ARGV[1])
if t and tonumber(t) > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RedisHealth:
    """:class:`~.base.HealthStore` on one Redis hash."""

    def __init__(self, link: Link, prefix: str):
        self.link = link
        self.key = prefix + "health"
        self.poll_key = prefix + "quota_poll"
        self._claim_poll = link.client.register_script(CLAIM_POLL)
        self._snap = _Snapshot(link, self.key, rows.normalise)
        self._pending: list[tuple[str, str, dict, float]] = []
        self._mutex = threading.Lock()

    # -- reads ---------------------------------------------------------------
    def snapshot(self) -> dict:
        data = self._snap.read()
        if self._pending and self.link.reachable():  # the first read since an outage
            self._replay()
            data = self._snap.read()
        return data

    def state(self, account_id: str) -> dict | None:
        return self.snapshot().get(account_id)

    # -- writes --------------------------------------------------------------
    def set_cooldown(self, account_id: str, until: float, reason: str) -> None:
        self._change(account_id, "set_cooldown", until=until, reason=reason)

    def clear(self, account_id: str, *, login: bool = False, before: float | None = None) -> None:
        self._change(account_id, "clear", login=login, before=before)

    def claim_probe(self, account_id: str, older_than: float) -> bool:
        return self._change(account_id, "claim_probe", older_than=older_than)

    def mark_needs_login(self, account_id: str, reason: str, credential: str = "") -> None:
        self._change(account_id, "mark_needs_login", reason=reason, credential=credential)

    def record_rate_limits(self, account_id: str, limits: dict, used: bool = True) -> None:
        self._change(account_id, "record_rate_limits", limits=limits, used=used)

    def claim_quota_poll(self, account_id: str, older_than: float) -> bool:
        """One caller across workers and instances asks the usage endpoint for
        *account_id* per interval (atomic in Redis). While Redis is unreachable
        nobody polls: the windows are for display, a poll per worker is not."""
        try:
            return bool(self.link.run(lambda r: self._claim_poll(
                keys=[self.poll_key], args=[account_id, time.time(), older_than], client=r)))
        except StateUnavailable:
            return False

    def record_used(self, account_id: str) -> None:
        self._change(account_id, "record_used")

    def record_refresh(self, account_id: str) -> None:
        self._change(account_id, "record_refresh")

    def forget(self, account_id: str) -> None:
        self._change(account_id, "forget")
        try:
            self.link.run(lambda r: r.hdel(self.poll_key, account_id))
        except StateUnavailable:
            pass

    # -- plumbing ------------------------------------------------------------
    def _change(self, account_id: str, op: str, now: float | None = None, **args) -> bool:
        now = time.time() if now is None else now
        try:
            return self.link.run(lambda r: self._transaction(r, account_id, op, args, now))
        except StateUnavailable:
            row, result = rows.apply(self._snap.data.get(account_id), op, args, now)
            self._snap.put_local(account_id, row)
            if op != "claim_probe":
                with self._mutex:
                    if len(self._pending) < PENDING_MAX:
                        self._pending.append((account_id, op, args, now))
            return result

    def _transaction(self, r, account_id: str, op: str, args: dict, now: float) -> bool:
        """Read-modify-write of one row under WATCH: a concurrent writer (another
        worker or instance) makes EXEC fail, and the change is computed again."""
        with r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.key)
                    raw = pipe.hget(self.key, account_id)
                    old = json.loads(raw) if raw else None
                    new, result = rows.apply(old, op, args, now)
                    if new == old:
                        pipe.unwatch()
                        return result
                    pipe.multi()
                    if new is None:
                        pipe.hdel(self.key, account_id)
                    else:
                        pipe.hset(self.key, account_id, json.dumps(new))
                    bump(pipe, self._snap.vkey)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def _replay(self) -> None:
        """Write the changes recorded during an outage, in their order and with
        their own times (a cooldown's end is absolute, so it stays right)."""
        with self._mutex:
            pending, self._pending = self._pending, []
        for i, (account_id, op, args, now) in enumerate(pending):
            try:
                self.link.run(lambda r: self._transaction(r, account_id, op, args, now))
            except StateUnavailable:
                with self._mutex:
                    self._pending = pending[i:] + self._pending
                return
        if pending:
            log.info("state store: %d health change(s) made during the outage written",
                     len(pending))


def open_redis(cfg):
    """``(store, health, link)`` for a config with ``state.backend = "redis"``."""
    state = cfg.state
    link = Link(state.redis_url, state.timeout_seconds, cfg.state_dir / "redis-outage")
    return (RedisStore(link, state.key_prefix, state.lock_ttl_seconds, state.outage_wait_seconds),
            RedisHealth(link, state.key_prefix), link)
