"""Cache breaks through the gateway (issue 26): a sloppy client (re-serialised
arguments, tool schemas with their keys shuffled each turn, ids dropped) gets
the cache a tidy client gets, tidy clients are left exactly as they are, and a
real rewrite is reported, not repaired.

The fake upstream models the prompt cache per account + key + session by the
prefix the model reads (tests/fakes/codex_answers.py): re-spaced arguments and
re-ordered tool schemas are other tokens; ids and status are not read.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.inprocess.test_usage import ADMIN_KEY, metrics
from tests.prefix_clients import (INSTRUCTIONS, OUTPUT, SCRIPT, TOOLS, Client, answer_of,
                                  direct, envelope_of, shuffled)
from tests.support import CLIENT_KEY, InProcess

def through(gw, headers=None):
    """Send through the gateway, every other turn streaming; *headers* collects
    each answer's ``x-gateway-repaired``."""
    turn = iter(range(1000))

    def send(body):
        stream = next(turn) % 2 == 1
        resp = gw.post("/v1/responses", dict(body, prompt_cache_key="conv-1", stream=stream))
        assert resp.status_code == 200, resp.get_data()
        if headers is not None:
            headers.append(resp.headers.get("x-gateway-repaired"))
        if not stream:
            final = resp.get_json()
            return final["output"], final["usage"]
        return answer_of(resp.get_data())
    return send


def records_of(gw) -> list:
    """Collect the gateway's finished request records."""
    seen: list = []
    ex = gw.app.extensions["gateway"].executor
    ex.sinks = ex.sinks + (seen.append,)
    return seen


def test_sloppy_responses_client_gets_a_tidy_clients_cache(make_client, upstream):
    gw = make_client()
    recs, repaired = records_of(gw), []
    sloppy = Client(through(gw, repaired), sloppy=True).run()
    assert [r.prefix for r in recs] == ["new"] + ["append"] * (len(recs) - 1)
    assert all(r.cache_break is None for r in recs)
    assert repaired[0] is None and repaired[1:] == [str(r.repaired) for r in recs[1:]]
    assert all(r.repaired for r in recs[1:])
    env = envelope_of(upstream.requests[-1])
    stored = b"".join(p.read_bytes() for p in gw.config.state_dir.glob("prefix.sqlite*"))
    assert b"conv-1" not in stored and env["key"].encode() not in stored  # keys as hashes

    upstream.reset()
    alone = Client(direct(upstream, env), sloppy=True).run()
    upstream.reset()
    tidy = Client(direct(upstream, env), sloppy=False).run()
    upstream.reset()
    gw_off = make_client(prefix_repair="false")
    off_recs = records_of(gw_off)
    off = Client(through(gw_off), sloppy=True).run()
    assert {r.cache_break.split("@")[0] for r in off_recs[1:]} == {"tools"}  # reported, as is
    assert not any(r.repaired for r in off_recs)
    upstream.reset()
    gw_none = make_client(prefix_enabled="false")
    none_recs = records_of(gw_none)
    assert Client(through(gw_none), sloppy=True).run() == alone
    assert {(r.prefix, r.cache_break, r.repaired) for r in none_recs} == {(None, None, 0)}

    print("cached through gateway", sum(sloppy), "direct", sum(alone), sloppy, alone)
    assert sum(sloppy) >= 1.5 * sum(alone), (sloppy, alone)
    assert sloppy == tidy
    assert off == alone  # without repair the gateway changes nothing


class ChatClient:
    """The same conversation in Chat Completions; ``sloppy`` re-serialises the
    arguments of every earlier tool call and shuffles the tool schemas each turn."""

    def __init__(self, gw, sloppy: bool, seed: int = 11):
        self.gw, self.sloppy = gw, sloppy
        self.rng = random.Random(seed)
        self.messages: list = [{"role": "system", "content": INSTRUCTIONS}]
        self.turn = 0
        self.records = records_of(gw)

    def _tools(self):
        tools = [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
                 for t in TOOLS]
        return shuffled(tools, self.rng) if self.sloppy and self.turn > 1 else tools

    def step(self, new: list) -> tuple[dict, dict]:
        self.turn += 1
        if self.sloppy:
            for msg in self.messages:
                for call in msg.get("tool_calls") or ():
                    fn = call["function"]
                    fn["arguments"] = json.dumps(shuffled(json.loads(fn["arguments"]), self.rng),
                                                 separators=(",", ":"))
        self.messages += new
        resp = self.gw.post("/v1/chat/completions", {
            "model": "gpt-5-codex", "messages": self.messages, "tools": self._tools(),
            "reasoning_effort": "low", "prompt_cache_key": "chat-1"})
        assert resp.status_code == 200, resp.get_data()
        answer = resp.get_json()
        message = answer["choices"][0]["message"]
        self.messages.append({k: v for k, v in message.items() if v is not None})
        return message, answer["usage"]

    def run(self) -> list[int]:
        cached = []
        for text in SCRIPT:
            message, usage = self.step([{"role": "user", "content": text}])
            cached.append(usage["prompt_tokens_details"]["cached_tokens"])
            (call,) = message["tool_calls"]
            message, usage = self.step([{"role": "tool", "tool_call_id": call["id"],
                                         "content": OUTPUT}])
            cached.append(usage["prompt_tokens_details"]["cached_tokens"])
        return cached


def test_sloppy_chat_client_gets_a_tidy_clients_cache(make_client, upstream):
    gw = make_client()
    client = ChatClient(gw, sloppy=True)
    sloppy = client.run()
    recs = client.records
    assert [r.prefix for r in recs] == ["new"] + ["append"] * (len(recs) - 1)
    assert all(r.repaired for r in recs[1:])  # at least the reasoning item Chat cannot carry
    upstream.reset()
    tidy = ChatClient(make_client(), sloppy=False).run()
    upstream.reset()
    off = ChatClient(make_client(prefix_repair="false"), sloppy=True).run()
    print("chat cached through gateway", sum(sloppy), "without repair", sum(off), sloppy, off)
    assert sum(sloppy) >= 1.5 * sum(off), (sloppy, off)
    assert sloppy == tidy


# -- tidy clients: the real captures -------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_DROP = {"authorization", "x-api-key", "host", "content-length", "accept-encoding", "connection"}
# Requests of a capture that start another conversation on a key already used:
# OpenCode's title request and its main conversation share the session header; a
# Claude Code subagent shares its parent's session id.
ANOTHER_CONVERSATION = {("opencode-two-turns.json", 1),
                        ("claude-code-2.1-more-requests.json", 12)}


def replay(gw, capture: list) -> list:
    recs = records_of(gw)
    for req in capture:
        headers = {k: v for k, v in req["headers"].items() if k.lower() not in _DROP}
        path = req["path"] + (f"?{req['query']}" if req.get("query") else "")
        if path.startswith("/v1beta/"):  # Gemini: the key in its own header
            resp = gw.post(path, req["body"], headers={**headers, "x-goog-api-key": CLIENT_KEY},
                           key=None)
        else:
            resp = gw.post(path, req["body"], headers=headers)
        assert resp.status_code == 200, resp.get_data()
        resp.get_data()
        resp.close()
    return recs


@pytest.mark.parametrize("name", ["codex-two-turns.json", "codex-0.171-http-two-turns.json",
                                  "opencode-two-turns.json",
                                  "claude-code-2.1-two-turns.json",
                                  "claude-code-2.1-more-requests.json",
                                  "gemini-cli-0.61-session.json"])
def test_real_client_captures_append_and_are_sent_unchanged(name, upstream, tmp_path):
    """Every turn after the first on its continuity key is ``append`` (a Gemini CLI
    router call has a key of its own), and the upstream gets the same bytes with
    repair on and off."""
    capture = json.loads((FIXTURES / name).read_text())
    sent = {}
    for repair in ("true", "false"):
        upstream.reset()
        gw = InProcess(upstream, tmp_path / repair, ("acct-a",), {"prefix_repair": repair})
        recs = replay(gw, capture)
        sent[repair] = [json.dumps(r["body"]) for r in upstream.requests]
        if repair == "true":
            verdicts = [(r.prefix, r.repaired) for r in recs]
            keys = [r.continuity_hash for r in recs]
    assert sent["true"] == sent["false"]
    assert len(sent["true"]) == len(capture)
    expected = ["new" if keys.index(key) == i or (name, i) in ANOTHER_CONVERSATION else "append"
                for i, key in enumerate(keys)]
    assert verdicts == [(v, 0) for v in expected], list(zip(verdicts, [r.get("label")
                                                                      for r in capture]))


def test_an_edited_earlier_message_is_reported_and_not_repaired(make_client, upstream, caplog):
    gw = make_client(auth_admin_keys=ADMIN_KEY, usage_quota_poll_seconds=0)
    recs = records_of(gw)
    client = Client(through(gw), sloppy=False)
    client.run()
    history = client.history
    users = [i for i, item in enumerate(history) if item.get("role") == "user"]
    k = users[1]  # the second user message: the model answered after it
    n = len(upstream.requests[-1]["body"]["input"])  # the previous turn's input
    edited = json.loads(json.dumps(history))
    edited[k]["content"][0]["text"] = '[[call:grep {"path": "tests", "limit": 5}]]'
    resp = gw.post("/v1/responses", {"model": "gpt-5-codex", "instructions": INSTRUCTIONS,
                                     "tools": TOOLS, "input": edited,
                                     "reasoning": {"effort": "low"},
                                     "prompt_cache_key": "conv-1"})
    assert resp.status_code == 200
    assert "x-gateway-repaired" not in resp.headers
    rec = recs[-1]
    assert (rec.prefix, rec.cache_break, rec.repaired) == (
        "rewrite", f"content@{k + 1}/{n}", 0)
    assert f"cache_break=content@{k + 1}/{n}" in caplog.text
    assert upstream.requests[-1]["body"]["input"][k]["content"][0]["text"] == \
        '[[call:grep {"path": "tests", "limit": 5}]]'

    # ... and counted: /metrics by cause (every cause present), usage rows, the status page
    found = metrics(gw)
    assert {ls["cause"]: v for ls, v in found["codex_gateway_cache_breaks_total"]} == {
        "instructions": 0, "tools": 0, "content": 1, "removed": 0, "order": 0}
    service = gw.app.extensions["gateway"].usage
    service.writer.flush()
    (row,) = service.store.query(0, "total")
    assert (row.breaks, row.causes) == (1, (("content", 1),))
    assert row.as_dict("total")["cache_break_causes"] == {"content": 1}
    page = gw.client.get("/status", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert '1 <small class="muted">content 1</small>' in page.get_data(as_text=True)


def test_a_codex_compaction_starts_a_new_window_not_a_break(make_client):
    capture = json.loads((FIXTURES / "codex-0.171-remote-compaction.json").read_text())
    recs = replay(make_client(), capture)
    assert [(r.prefix, r.cache_break) for r in recs] == [
        ("new", None), ("append", None), ("new", None)]
