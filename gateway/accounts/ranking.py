"""gateway.accounts.ranking
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Rendezvous (highest-random-weight) hashing of a continuity key over accounts.

Every worker ranks the same accounts in the same order for the same key, with
no shared map. Removing one account moves only the keys it held (each to its
next-ranked account); adding it back returns them. Weights let a larger plan
hold proportionally more conversations.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable


def score(key: str, account_id: str, weight: float = 1.0) -> float:
    """Weighted rendezvous score: -w / ln(u), u uniform in (0, 1) from a hash."""
    digest = hashlib.blake2b(f"{key}\x00{account_id}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / 2.0**64
    return -weight / math.log(u)


def rank(key: str, accounts: Iterable) -> list:
    """Accounts (anything with ``id`` and ``weight``) ordered best first for
    ``key``; ties broken by id."""
    return sorted(accounts, key=lambda a: (-score(key, a.id, a.weight or 1.0), a.id))
