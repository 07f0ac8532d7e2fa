"""gateway.usage.redis_store
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
:class:`~gateway.usage.store.UsageStore` in Redis, for ``[state] backend =
"redis"``: every instance writes its rows to one sorted set (score = the
request's start time), so ``codex-gateway usage`` and ``/status`` on any host
see all of them.

Each member is ``<random id>|<row JSON>`` (two identical rows must stay two).
Queries read the time range and aggregate in Python with the same function the
tests check the SQLite store against (:func:`gateway.usage.records.aggregate`):
a gateway's usage over days is thousands to a few million rows, read only by
the CLI and the status page. A Redis outage raises ``StateUnavailable``; the
writer counts those rows as dropped, and requests never wait for it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict

from .records import COLUMNS, Aggregate, UsageRow, aggregate


class RedisUsage:
    def __init__(self, link, key_prefix: str):
        self.link = link
        self.key = f"{key_prefix}usage"

    def add(self, rows: Iterable[UsageRow]) -> None:
        members = {f"{os.urandom(8).hex()}|{json.dumps(asdict(r), separators=(',', ':'))}": r.ts
                   for r in rows}
        if members:
            self.link.run(lambda r: r.zadd(self.key, members))

    def _rows(self, since: float, until: float | None) -> list[UsageRow]:
        high = f"({until}" if until is not None else "+inf"
        raw = self.link.run(lambda r: r.zrangebyscore(self.key, since, high))
        rows = []
        for member in raw:
            text = member.decode() if isinstance(member, bytes) else member
            data = json.loads(text.split("|", 1)[1])
            rows.append(UsageRow(**{k: data.get(k) for k in COLUMNS}))
        return rows

    def query(self, since: float, by: str, until: float | None = None) -> list[Aggregate]:
        return aggregate(self._rows(since, until), by)

    def prune(self, before: float) -> int:
        return int(self.link.run(lambda r: r.zremrangebyscore(self.key, "-inf", f"({before}")))

    def recent_errors(self, since: float, limit: int = 20) -> list[UsageRow]:
        errors = [row for row in self._rows(since, None) if row.error]
        return sorted(errors, key=lambda row: row.ts, reverse=True)[:limit]

    def close(self) -> None:
        """Nothing to close: the link belongs to the state backend."""
