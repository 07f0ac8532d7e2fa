"""gateway.responses_store.redis
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Stored responses in the shared Redis (``[state] backend = "redis"``), so every
worker of every instance continues the same chains.

Keys (after ``state.key_prefix``):

=========================  =====================================================
``resp:<id>``              the stored response (owner, created, body), with a TTL
                           of the retention
``resp:item:<owner>:<id>`` the response that holds output item ``<id>`` (same TTL)
``resp:order``             sorted set: response id → created (oldest-first eviction)
``resp:sizes``             hash: response id → bytes
``resp:bytes``             the total of ``resp:sizes``
=========================  =====================================================

``<owner>`` is a digest of the client key id. Every call goes through the
state link, so an outage is a :class:`~gateway.state.errors.StateUnavailable`.
"""
from __future__ import annotations

import hashlib
import time

from ..jsonio import dumps, loads
from . import Stored

EVICT_BATCH = 64


def _owner_tag(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:16]


class RedisResponses:
    def __init__(self, link, prefix: str, retention: float, max_bytes: int):
        self.link = link
        self.prefix = prefix
        self.retention = retention
        self.max_bytes = max_bytes
        self.order, self.sizes, self.total = (prefix + "resp:order", prefix + "resp:sizes",
                                              prefix + "resp:bytes")

    def _key(self, rid: str) -> str:
        return f"{self.prefix}resp:{rid}"

    def _item_key(self, owner: str, item_id: str) -> str:
        return f"{self.prefix}resp:item:{_owner_tag(owner)}:{item_id}"

    def put(self, stored: Stored, blob: bytes) -> None:
        ttl = max(1, int(self.retention * 1000))
        value = dumps({"owner": stored.owner, "created": stored.created_at}) + b"\n" + blob

        def write(r):
            old = r.hget(self.sizes, stored.id)
            pipe = r.pipeline()
            pipe.set(self._key(stored.id), value, px=ttl)
            for item in stored.output:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    pipe.set(self._item_key(stored.owner, item["id"]), stored.id, px=ttl)
            pipe.zadd(self.order, {stored.id: stored.created_at})
            pipe.hset(self.sizes, stored.id, len(value))
            pipe.incrby(self.total, len(value) - int(old or 0))
            return pipe.execute()[-1]
        total = self.link.run(write)
        self.prune(time.time())
        if total > self.max_bytes:
            self._evict(total - self.max_bytes, stored.id)

    def put_batch(self, batch: list[tuple[Stored, bytes]]) -> None:
        for stored, blob in batch:
            self.put(stored, blob)

    def _evict(self, excess: int, keep: str) -> None:
        def evict(r):
            freed = 0
            while freed < excess:
                ids = [i.decode() for i in r.zrange(self.order, 0, EVICT_BATCH - 1)]
                ids = [i for i in ids if i != keep]
                if not ids:
                    return
                for rid in ids:
                    freed += self._drop(r, rid)
                    if freed >= excess:
                        return
        self.link.run(evict)

    def _drop(self, r, rid: str) -> int:
        """Forget *rid* in every key; returns the bytes it held."""
        size = int(r.hget(self.sizes, rid) or 0)
        pipe = r.pipeline()
        pipe.delete(self._key(rid))
        pipe.zrem(self.order, rid)
        pipe.hdel(self.sizes, rid)
        pipe.decrby(self.total, size)
        pipe.execute()
        return size

    def _read(self, r, rid: str) -> Stored | None:
        value = r.get(self._key(rid))
        if value is None:
            return None
        head, _, blob = value.partition(b"\n")
        meta = loads(head)
        return Stored.decode(rid, meta["owner"], meta["created"], blob)

    def get(self, rid: str, owner: str) -> Stored | None:
        stored = self.link.run(lambda r: self._read(r, rid))
        return stored if stored is not None and stored.owner == owner else None

    def find_item(self, item_id: str, owner: str) -> Stored | None:
        rid = self.link.run(lambda r: r.get(self._item_key(owner, item_id)))
        return self.get(rid.decode(), owner) if rid else None

    def delete(self, rid: str, owner: str) -> bool:
        def delete(r):
            stored = self._read(r, rid)
            if stored is None or stored.owner != owner:
                return False
            self._drop(r, rid)
            return True
        return self.link.run(delete)

    def prune(self, now: float) -> int:
        """Forget the ids whose keys expired (their TTL did the deleting)."""
        def prune(r):
            ids = [i.decode() for i in r.zrangebyscore(self.order, "-inf",
                                                       now - self.retention)]
            for rid in ids:
                self._drop(r, rid)
            return len(ids)
        return self.link.run(prune)

    def purge(self) -> int:
        def purge(r):
            count = r.zcard(self.order)
            for key in r.scan_iter(match=self.prefix + "resp:*", count=500):
                r.delete(key)
            return count
        return self.link.run(purge)
