"""gateway.policy.redis_counters
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
:class:`~gateway.policy.counters.Counters` in Redis, for several instances:
one Lua script reads a key's counters, applies the admission rule of
:func:`gateway.policy.admission.refused_by` and records the request, atomically
(Redis runs a script alone), in one round trip.

Keys (``state.key_prefix`` in front): ``policy:req:<key id>`` (sorted set of
request start times), ``policy:lease:<key id>`` (sorted set lease → expiry),
``policy:reserve:<key id>`` (hash lease → reserved tokens),
``policy:charged:<key id>`` (hash bucket → tokens). Times are the gateways'
clocks (keep instances on NTP).
"""
from __future__ import annotations

import os

from .admission import MINUTE, Plan, Seen

_PRUNE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  redis.call('HDEL', KEYS[3], unpack(expired))
end
"""
# ARGV: now, minute, rpm (-1: none), concurrency (-1), reserve, request member, lease id,
# lease until, ttl ms, then (bucket, limit, name) per budget.
_ADMIT = _PRUNE + """
local now, rpm, conc, reserve = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5])
local requests = redis.call('ZCARD', KEYS[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or ''
local in_flight = redis.call('ZCARD', KEYS[2])
local reserved = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do reserved = reserved + tonumber(v) end
local refused = ''
if rpm >= 0 and requests >= rpm then refused = 'requests_per_minute'
elseif conc >= 0 and in_flight >= conc then refused = 'concurrency' end
local charged = {}
for i = 10, #ARGV, 3 do
  local used = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0')
  charged[#charged + 1] = ARGV[i]
  charged[#charged + 1] = used
  if refused == '' and (used >= tonumber(ARGV[i + 1]) or
      (in_flight > 0 and used + reserved + reserve > tonumber(ARGV[i + 1]))) then
    refused = ARGV[i + 2]
  end
end
if refused == '' then
  if rpm >= 0 then
    redis.call('ZADD', KEYS[1], now, ARGV[6])
    redis.call('PEXPIRE', KEYS[1], ARGV[9])
  end
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[7])
  redis.call('HSET', KEYS[3], ARGV[7], reserve)
  redis.call('PEXPIRE', KEYS[2], ARGV[9])
  redis.call('PEXPIRE', KEYS[3], ARGV[9])
end
return {refused, requests, first, in_flight, reserved, charged}
"""
KEEP_MS = 9 * 86400 * 1000


class RedisCounters:
    def __init__(self, link, prefix: str):
        self.link = link
        self.prefix = prefix + "policy:"
        self._admit = link.client.register_script(_ADMIT)

    def _keys(self, key_id: str) -> list[str]:
        p = self.prefix
        return [f"{p}req:{key_id}", f"{p}lease:{key_id}", f"{p}reserve:{key_id}",
                f"{p}charged:{key_id}"]

    def admit(self, plan: Plan) -> tuple[str | None, Seen]:
        lease_ms = int((plan.lease_until - plan.now) * 1000) + 1000
        args = [repr(plan.now), MINUTE, _opt(plan.rpm), _opt(plan.concurrency), plan.reserve,
                f"{plan.now!r}:{os.urandom(6).hex()}", plan.lease_id, repr(plan.lease_until),
                max(lease_ms, int(MINUTE * 1000) + 1000)]
        for b in plan.budgets:
            args += [b.bucket, b.limit, b.name]
        refused, requests, first, in_flight, reserved, charged = self.link.run(
            lambda r: self._admit(keys=self._keys(plan.key_id), args=args, client=r))
        seen = Seen(int(requests), float(first) if first else None, int(in_flight),
                    int(reserved), _pairs(charged))
        refused = refused.decode() if isinstance(refused, bytes) else refused
        return refused or None, seen

    def settle(self, key_id: str, lease_id: str, tokens: int, buckets: tuple[str, ...],
               now: float) -> None:
        req, lease, reserve, charged = self._keys(key_id)

        def write(r):
            pipe = r.pipeline(transaction=True)
            pipe.zrem(lease, lease_id)
            pipe.hdel(reserve, lease_id)
            for bucket in buckets:
                pipe.hincrby(charged, bucket, tokens)
            pipe.pexpire(charged, KEEP_MS)
            pipe.execute()
        self.link.run(write)

    def seen(self, key_id: str, buckets: tuple[str, ...], now: float) -> Seen:
        req, lease, reserve, charged = self._keys(key_id)

        def read(r):
            pipe = r.pipeline(transaction=False)
            pipe.zrangebyscore(req, f"({now - MINUTE!r}", "+inf", withscores=True)
            pipe.zrangebyscore(lease, f"({now!r}", "+inf")
            pipe.hgetall(reserve)
            pipe.hmget(charged, list(buckets) or ["-"])
            return pipe.execute()
        times, live, reserves, used = self.link.run(read)
        live = {x.decode() if isinstance(x, bytes) else x for x in live}
        reserved = sum(int(v) for k, v in reserves.items()
                       if (k.decode() if isinstance(k, bytes) else k) in live)
        return Seen(len(times), times[0][1] if times else None, len(live), reserved,
                    {b: int(u) for b, u in zip(buckets, used) if u is not None})


def _opt(value: int | None) -> int:
    return -1 if value is None else value


def _pairs(flat) -> dict[str, int]:
    out = {}
    for i in range(0, len(flat), 2):
        name = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
        out[name] = int(flat[i + 1])
    return out
