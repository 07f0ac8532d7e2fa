"""gateway.prefix.watch
~~~~~~~~~~~~~~~~~~~~~~~~
What the executor calls, once a turn's continuity key is known.

:meth:`PrefixWatch.before` loads the key's memory, repairs the body (when
``prefix.repair`` is on), classifies the turn against the kept fingerprints,
writes the verdict and the repair count into the request record, and keeps
the new fingerprint. :meth:`PrefixWatch.answered` is handed to the upstream
stream: when the answer completes, its output items are kept for the next
turn's repair (at once, before the client sees ``response.completed``; off the
relay loop, as every end-of-answer write, when the answer is relayed).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from .. import jsonio
from .fingerprint import Fingerprint, classify
from .repair import Memory, kept_for_repair, repair

log = logging.getLogger("gateway.prefix")

MAX_THREADS = 4  # conversations remembered per key (a title request beside the main one)


def storage_key(key: str) -> str:
    """Where a continuity key's memory is stored: a hash (an explicit
    ``prompt_cache_key`` is the client's own text, never written out as it is)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _json(raw, kind: type):
    """*raw* as a value of *kind*, or None (absent, garbled, the wrong shape)."""
    if not raw:
        return None
    try:
        value = jsonio.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, kind) else None


def _carries_model_items(body: dict) -> bool:
    """Whether *body* carries back an item a model produced (a call, reasoning, an
    assistant message): only those are repaired, so a turn without one (a
    conversation's first, a one-shot request) need not read the kept answers."""
    items = body.get("input")
    return isinstance(items, list) and any(kept_for_repair(i) for i in items)


class PrefixWatch:
    def __init__(self, cfg, store):
        self.cfg = cfg        # config.PrefixConfig
        self.store = store

    def before(self, body: dict, key: str, record,
               account: str | None = None) -> Callable[[list, str | None], None] | None:
        """Repair and classify *body* for continuity *key*, to be sent to *account*
        first; returns the callback that keeps the answer's output items and the
        account that produced them (None when the feature is off)."""
        if not self.cfg.enabled or not key:
            return None
        key = storage_key(key)
        try:
            return self._before(body, key, record, account)
        except Exception:  # noqa: BLE001 - watching the prefix must never fail a request
            log.exception("prefix: classifying a turn failed")
            return None

    def _before(self, body: dict, key: str, record, account) -> Callable:
        turns = _json(self.store.get_turns(key), dict) or {}
        kept = [fp for fp in (Fingerprint.from_json(d) for d in turns.get("fp") or ())
                if fp is not None]
        tools = turns.get("tools") if isinstance(turns.get("tools"), dict) else {}
        if self.cfg.repair:
            kept_answers = [a for a in (_json(raw, dict) for raw in self.store.answers(key))
                            if a is not None and isinstance(a.get("items"), list)] \
                if _carries_model_items(body) else []
            record.repaired = repair(body, Memory(
                [a["items"] for a in kept_answers], tools,
                producers=[a.get("account") for a in kept_answers], account=account))
        current = Fingerprint.of(body)
        verdict = classify(current, kept)
        record.prefix, record.cache_break = verdict.kind, verdict.label
        if verdict.thread is not None:
            kept.pop(verdict.thread)
        kept.insert(0, current)
        self.store.put_turns(key, jsonio.dumps(
            {"fp": [fp.as_json() for fp in kept[:MAX_THREADS]], "tools": tools}))
        return lambda items, producer: self.answered(key, items, producer)

    def answered(self, key: str, items: list, account: str | None = None) -> None:
        """Keep a completed answer's output items and the account that produced
        them (the last ``max_answers``)."""
        items = [i for i in items if kept_for_repair(i)]
        if not items or not self.cfg.repair:
            return
        try:
            self.store.add_answer(key, jsonio.dumps({"account": account, "items": items}),
                                  self.cfg.max_answers)
        except Exception:  # noqa: BLE001 - keeping an answer must never fail it
            log.exception("prefix: keeping an answer failed")
