"""gateway.prefix.watch: what a turn reads."""
from __future__ import annotations

from gateway.config import PrefixConfig
from gateway.prefix.store import SQLitePrefixStore
from gateway.prefix.watch import PrefixWatch
from gateway.record import RequestRecord


class Counting(SQLitePrefixStore):
    def __init__(self, path):
        super().__init__(path, ttl=3600, max_keys=100, max_bytes=1 << 20)
        self.reads = 0

    def answers(self, key):
        self.reads += 1
        return super().answers(key)


def user(text):
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}


def said(text):
    return {"type": "message", "role": "assistant", "id": "msg_" + text,
            "content": [{"type": "output_text", "text": text}]}


def test_only_a_turn_carrying_a_models_item_reads_the_kept_answers(tmp_path):
    store = Counting(tmp_path / "p.sqlite")
    watch = PrefixWatch(PrefixConfig(), store)
    rec = RequestRecord(dialect="responses")
    keep = watch.before({"model": "m", "input": [user("hi")]}, "key", rec, "acct")
    assert rec.prefix == "new" and store.reads == 0  # a first turn: nothing to repair
    keep([said("hello")], "acct")
    rec = RequestRecord(dialect="responses")
    watch.before({"model": "m", "input": [user("hi"), said("hello"), user("more")]}, "key",
                 rec, "acct")
    assert rec.prefix == "append" and store.reads == 1
