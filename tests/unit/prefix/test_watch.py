"""gateway.prefix.watch: what a turn reads and writes, and when."""
from __future__ import annotations

from gateway.config import PrefixConfig
from gateway.prefix.store import SQLitePrefixStore
from gateway.prefix.watch import PrefixWatch
from gateway.record import RequestRecord


class Counting(SQLitePrefixStore):
    """The SQLite store, counting what the watch asks of it."""

    def __init__(self, path):
        super().__init__(path, ttl=3600, max_keys=100, max_bytes=1 << 20)
        self.calls: list[str] = []

    def answers(self, key):
        self.calls.append("answers")
        return super().answers(key)

    def remember(self, key, turns, answer, keep):
        self.calls.append(f"remember turns={turns is not None} answer={answer is not None}")
        super().remember(key, turns, answer, keep)


def user(text):
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}


def said(text):
    return {"type": "message", "role": "assistant", "id": "msg_" + text,
            "content": [{"type": "output_text", "text": text}]}


def turn(watch, items):
    rec = RequestRecord(dialect="responses")
    keep = watch.before({"model": "m", "input": items}, "key", rec, "acct")
    return rec, keep


def test_a_turn_is_written_once_when_its_answer_completes(tmp_path):
    store = Counting(tmp_path / "p.sqlite")
    watch = PrefixWatch(PrefixConfig(), store)
    rec, keep = turn(watch, [user("hi")])
    assert rec.prefix == "new" and store.calls == []  # a first turn reads no answers, writes nothing
    keep([said("hello")], "acct")
    assert store.calls == ["remember turns=True answer=True"]  # one transaction for both
    store.calls.clear()
    rec, keep = turn(watch, [user("hi"), said("hello"), user("more")])
    assert rec.prefix == "append" and store.calls == ["answers"]  # it carries a model's item


def test_a_turn_whose_answer_never_completes_is_not_remembered(tmp_path):
    store = Counting(tmp_path / "p.sqlite")
    watch = PrefixWatch(PrefixConfig(), store)
    _, keep = turn(watch, [user("hi")])
    keep([said("hello")], "acct")
    turn(watch, [user("hi"), said("hello"), user("next")])  # failed: its callback never runs
    rec, _ = turn(watch, [user("hi"), said("hello"), user("next")])  # the retry
    assert rec.prefix == "append"  # compared with the answered turn, not the failed one
    assert sum(c.startswith("remember") for c in store.calls) == 1


def test_without_repair_only_the_turn_is_written(tmp_path):
    store = Counting(tmp_path / "p.sqlite")
    watch = PrefixWatch(PrefixConfig(repair=False), store)
    _, keep = turn(watch, [user("hi")])
    keep([said("hello")], "acct")
    assert store.calls == ["remember turns=True answer=False"]
    assert store.answers("key") == []
