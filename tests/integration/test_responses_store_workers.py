"""previous_response_id across gunicorn workers and a restart (the SQLite store).

Four chains of five turns run at once on a gateway with four workers, each turn
on a new connection (so turns land on whichever worker accepts them), then the
gateway restarts and every chain continues. The upstream must see each turn as
the whole history (never a previous_response_id), one envelope per chain, and
cached tokens on every turn after the first.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import LONG_SYSTEM, auth_headers, gateway_env, stream_events

CHAINS = 4
TURNS = 5


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def turn(gw, chain: int, n: int, previous: str | None) -> dict:
    body = {"model": "gpt-5-codex", "instructions": LONG_SYSTEM,
            "input": [user(f"[[say:chain {chain} answer {n}]] chain {chain} question {n}")]}
    if previous:
        body["previous_response_id"] = previous
    stream = n % 2 == 1  # streaming and not, alternately
    resp = requests.post(gw.url + "/v1/responses", json={**body, "stream": stream},
                         headers=auth_headers(Connection="close"), timeout=30, stream=stream)
    assert resp.status_code == 200, resp.text
    if not stream:
        return resp.json()
    done = [e for _, e in stream_events(resp) if e.type == "response.completed"]
    return done[0].data["response"]


def run_chain(gw, chain: int, turns: range, previous: str | None) -> str:
    for n in turns:
        answer = turn(gw, chain, n, previous)
        assert answer["output"][-1]["content"][0]["text"] == f"chain {chain} answer {n}"
        assert answer["previous_response_id"] == previous
        previous = answer["id"]
    return previous


def test_five_turn_chains_over_four_workers_survive_a_restart(upstream, tmp_path,
                                                              gateway_factory):
    gw = gateway_factory(gateway_env(upstream, tmp_path), workers=4)
    with ThreadPoolExecutor(CHAINS) as pool:
        last = list(pool.map(lambda c: run_chain(gw, c, range(TURNS), None), range(CHAINS)))
    gw.restart()
    with ThreadPoolExecutor(CHAINS) as pool:
        list(pool.map(lambda c: run_chain(gw, c, range(TURNS, TURNS + 1), last[c]),
                      range(CHAINS)))

    sent = [r for r in upstream.requests if r["status"] == 200]
    assert len(sent) == CHAINS * (TURNS + 1)
    for chain in range(CHAINS):
        mine = [r for r in sent if f"chain {chain} question 0" in str(r["body"]["input"][0])]
        assert len(mine) == TURNS + 1
        assert all("previous_response_id" not in r["body"] for r in mine)
        assert [len(r["body"]["input"]) for r in mine] == [2 * n + 1 for n in range(TURNS + 1)]
        envelopes = {(r["account"], r["body"]["prompt_cache_key"], r["headers"]["session_id"])
                     for r in mine}
        assert len(envelopes) == 1, envelopes
        assert all(r["cached_tokens"] >= 1024 for r in mine[1:]), \
            [r["cached_tokens"] for r in mine]
    assert "Traceback" not in gw.logs()
