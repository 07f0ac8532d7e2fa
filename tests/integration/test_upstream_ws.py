"""The Codex backend over WebSocket under real gunicorn (2 workers): HTTP clients and
Codex CLI over WebSocket upload only each turn's new items, answers and cache
accounting as over HTTP; a backend that refuses the upgrade is used over HTTP with
one refused upgrade per account per fallback period, whichever worker asks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect

from tests.fakes.codex_answers import render_item
from tests.fakes.codex_upstream import FakeCodexUpstream
from tests.support import (LONG_SYSTEM, accounts_env, auth_headers, gateway_env,
                           leave_during_silence)

MODEL = "gpt-5-codex"
CAPTURE = Path(__file__).resolve().parent.parent / "fixtures" / "codex-0.171-websocket-tool-turn.json"
TEXTS = [f"[[say:answer {i}]]" for i in range(5)]


@pytest.fixture
def upstream():
    with FakeCodexUpstream(websocket="accept") as srv:
        yield srv


@pytest.fixture
def gateway_factory(gateway_factory):
    """These tests are about the socket itself: a conversation's first turn opens it
    (``websocket_open_after_turns = 0``) unless a test says otherwise."""
    def make(env: dict, **kw):
        env.setdefault("CODEX_GATEWAY_UPSTREAM_WEBSOCKET_OPEN_AFTER_TURNS", "0")
        return gateway_factory(env, **kw)
    return make


def start(gateway_factory, upstream, tmp_path, workers=2, **env):
    return gateway_factory(gateway_env(upstream, tmp_path, **env), workers=workers)


def chat_conversation(gw, session, texts=TEXTS, http=None):
    """OpenCode's shape: Chat Completions, a session header, the history resent."""
    http = http or requests.Session()
    messages, answers = [{"role": "system", "content": LONG_SYSTEM}], []
    for text in texts:
        messages.append({"role": "user", "content": text})
        resp = http.post(gw.url + "/v1/chat/completions", json={"model": MODEL,
                         "messages": messages}, headers=auth_headers(**{"x-session-id": session}),
                         timeout=30)
        assert resp.status_code == 200, resp.text
        answers.append(resp.json()["choices"][0]["message"]["content"])
        messages.append({"role": "assistant", "content": answers[-1]})
    return answers


def seen(record) -> list[str]:
    """The request's input as the model sees it."""
    return [render_item(i) for i in record["body"]["input"]]


def by_turn(records):
    return [(r["cached_tokens"], r["input_tokens"], r["cache_key"]) for r in records]


def test_http_clients_upload_only_new_items_on_a_kept_alive_connection(
        gateway_factory, upstream, tmp_path):
    gw = start(gateway_factory, upstream, tmp_path)
    answers = chat_conversation(gw, "opencode-1")  # one keep-alive connection: one worker
    assert answers == [f"answer {i}" for i in range(5)]
    recs = upstream.requests
    assert [r["transport"] for r in recs] == ["websocket"] * 5
    assert [r["wire"]["previous_response_id"] is not None for r in recs] == [False] + [True] * 4
    assert all(r["wire"]["input_items"] == 1 for r in recs[1:])
    assert max(r["wire_bytes"] for r in recs[1:]) < recs[0]["wire_bytes"] / 3
    assert len(upstream.handshakes) == 1
    # Against the same conversation over HTTP: the same answers and the same cache.
    ws_recs = recs
    upstream.reset()
    gw_http = start(gateway_factory, upstream, tmp_path,
                    CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT="http")
    assert chat_conversation(gw_http, "opencode-1") == answers
    http_recs = upstream.requests
    assert {r["transport"] for r in http_recs} == {"http"}
    assert [r["cache_key"][2:] for r in ws_recs] == [r["cache_key"][2:] for r in http_recs]
    # Exactly the same prompt and cached tokens each turn: the backend counts what
    # the model sees, and the client's re-rendered answers are that.
    assert [r[:2] for r in by_turn(ws_recs)] == [r[:2] for r in by_turn(http_recs)]
    assert sum(r["wire_bytes"] for r in ws_recs) < sum(r["wire_bytes"] for r in http_recs) / 2


def test_turns_that_change_worker_are_sent_in_full_and_still_correct(
        gateway_factory, upstream, tmp_path):
    gw = start(gateway_factory, upstream, tmp_path)
    messages = [{"role": "system", "content": LONG_SYSTEM}]
    for text in TEXTS * 2:  # a new connection per turn: the kernel picks the worker
        messages.append({"role": "user", "content": text})
        resp = requests.post(gw.url + "/v1/chat/completions", json={
            "model": MODEL, "messages": messages}, timeout=30,
            headers=auth_headers(Connection="close", **{"x-session-id": "s"}))
        assert resp.status_code == 200
        answer = resp.json()["choices"][0]["message"]["content"]
        assert answer == text[6:-2]
        messages.append({"role": "assistant", "content": answer})
    recs = upstream.requests
    # Whatever each turn uploaded, the backend saw the whole conversation.
    assert [len(r["body"]["input"]) for r in recs] == [2 + 2 * i for i in range(10)]
    assert len(upstream.handshakes) <= 2  # at most one socket per worker


def ws_answer(ws):
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=10)))
        if frames[-1]["type"] in ("response.completed", "response.failed", "error"):
            return frames


def codex_session(gw, turns=4):
    """Codex CLI over WebSocket: prewarm, then each turn as previous_response_id + delta."""
    base = {"type": "message", "role": "developer",
            "content": [{"type": "input_text", "text": LONG_SYSTEM}]}
    frame = {"type": "response.create", "model": MODEL, "stream": True, "store": False,
             "prompt_cache_key": "thread-9"}
    url = gw.url.replace("http://", "ws://") + "/v1/responses"
    texts = []
    with connect(url, additional_headers=auth_headers(**{"session-id": "thread-9"}),
                 open_timeout=10) as ws:
        ws.send(json.dumps({**frame, "generate": False, "input": [base]}))
        previous = ws_answer(ws)[-1]["response"]["id"]
        for i in range(turns):
            ws.send(json.dumps({**frame, "previous_response_id": previous, "input": [
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": f"[[say:turn {i}]]"}]}]}))
            done = ws_answer(ws)[-1]
            assert done["type"] == "response.completed", done
            previous = done["response"]["id"]
            texts.append(done["response"]["output"][-1]["content"][0]["text"])
    return texts


def test_codex_over_websocket_maps_onto_one_upstream_socket(gateway_factory, upstream, tmp_path):
    gw = start(gateway_factory, upstream, tmp_path)
    assert codex_session(gw) == [f"turn {i}" for i in range(4)]
    recs = upstream.requests
    assert [r["transport"] for r in recs] == ["websocket"] * 5
    # The prewarm reaches the backend (generate: false) and holds the base prompt;
    # every turn, the first included, is then only the new user message.
    prewarm, *ws_recs = recs
    assert prewarm["prewarm"] and prewarm["wire"]["generate"] is False
    assert [r["wire"]["input_items"] for r in recs] == [1, 1, 1, 1, 1]
    assert [r["wire"]["previous_response_id"] for r in ws_recs] == [
        f"resp_fake{r['id']:04d}" for r in recs[:-1]]
    assert len(upstream.handshakes) == 1
    upstream.reset()
    gw_http = start(gateway_factory, upstream, tmp_path,
                    CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT="http")
    assert codex_session(gw_http) == [f"turn {i}" for i in range(4)]
    http_recs = upstream.requests
    # Over HTTP there is no prewarm upstream (it would be a billed request): the
    # gateway answers it, and no socket is opened.
    assert len(http_recs) == 4 and upstream.handshakes == []
    # Codex sends the backend's own items back: identical prompts (the answers' ids
    # are numbered one up over the socket: the prewarm was a request), identical
    # accounting, except that over the socket the prewarm already cached the base prompt.
    assert [seen(r) for r in ws_recs] == [seen(r) for r in http_recs]
    assert by_turn(ws_recs[1:]) == by_turn(http_recs[1:])
    assert http_recs[0]["cached_tokens"] == 0 and ws_recs[0]["cached_tokens"] > 1000
    assert ws_recs[1]["cached_tokens"] > 1000


def test_captured_codex_prewarm_warms_the_backend_and_the_turn_continues_from_it(
        gateway_factory, upstream, tmp_path):
    """Codex 0.171's frames (prewarm, turn, tool follow-up, as captured) over a client
    WebSocket: the prewarm reaches the backend's socket with generate: false, the
    turn goes as previous_response_id = the prewarm's response + only its new items."""
    capture = json.loads(CAPTURE.read_text())
    upgrade = capture[0]["headers"]
    frames = [e["frame"] for e in capture if e["kind"] == "client_frame"]
    captured_ids = [e["response_id"] for e in capture if e["kind"] == "server_answer"]
    keep = ("user-agent", "originator", "openai-beta", "x-codex-turn-metadata",
            "x-codex-beta-features", "x-client-request-id", "session-id", "thread-id",
            "x-codex-window-id")
    headers = {k: v for k, v in upgrade.items() if k in keep}
    gw = start(gateway_factory, upstream, tmp_path)
    url = gw.url.replace("http://", "ws://") + "/v1/responses"
    ids, answers = {}, []
    with connect(url, additional_headers=auth_headers(**headers), open_timeout=10) as ws:
        for frame, captured in zip(frames, captured_ids):
            frame = dict(frame)
            if "previous_response_id" in frame:
                frame["previous_response_id"] = ids[frame["previous_response_id"]]
            ws.send(json.dumps(frame))
            answers.append(ws_answer(ws))
            assert answers[-1][-1]["type"] == "response.completed", answers[-1][-1]
            ids[captured] = answers[-1][-1]["response"]["id"]
    prewarm, turn, follow_up = upstream.requests
    assert {r["transport"] for r in (prewarm, turn, follow_up)} == {"websocket"}
    assert len(upstream.handshakes) == 1
    # The prewarm: on the backend's socket, generate: false, its input as Codex sent it.
    assert prewarm["prewarm"] and prewarm["wire"]["generate"] is False
    assert prewarm["body"]["input"] == frames[0]["input"]
    assert [f["type"] for f in answers[0]] == ["response.created", "response.in_progress",
                                               "response.completed"]
    done = answers[0][-1]["response"]
    assert done["id"] == f"resp_fake{prewarm['id']:04d}" and done["output"] == []
    assert done["usage"]["input_tokens"] == done["usage"]["output_tokens"] == 0
    # The turn continues from the prewarm's response with only its new items, under
    # the prompt-cache identity the prewarm warmed (the capture's prompts are below
    # the cache's 1024-token minimum; codex_session's show the cached tokens).
    assert turn["wire"]["previous_response_id"] == done["id"]
    assert turn["wire"]["input_items"] == len(frames[1]["input"])
    assert turn["body"]["input"] == frames[0]["input"] + frames[1]["input"]
    assert turn["cache_key"] == prewarm["cache_key"]
    # The tool follow-up: only the tool output, after the turn's response.
    assert follow_up["wire"]["previous_response_id"] == f"resp_fake{turn['id']:04d}"
    assert follow_up["wire"]["input_items"] == 1
    assert follow_up["body"]["input"][-1] == frames[2]["input"][0]


def test_a_prewarm_whose_upgrade_is_refused_is_answered_by_the_gateway(
        gateway_factory, upstream, tmp_path):
    upstream.inject("http_500", at="upgrade")
    gw = start(gateway_factory, upstream, tmp_path, workers=1)
    assert codex_session(gw, turns=2) == ["turn 0", "turn 1"]
    assert [s["status"] for s in upstream.handshakes] == [500]  # then HTTP for the period
    assert [r["transport"] for r in upstream.requests] == ["http", "http"]
    assert upstream.requests[0]["body"]["input"][0]["role"] == "developer"


def test_a_refusing_backend_is_used_over_http_one_refusal_per_account_per_period(
        gateway_factory, upstream, tmp_path):
    upstream.configure(websocket=426)
    env = accounts_env(upstream, tmp_path, ("acct-a", "acct-b"))
    gw = gateway_factory(env, workers=2)
    for i in range(24):  # new connections: both workers serve some
        resp = requests.post(gw.url + "/v1/responses", json={
            "model": MODEL, "input": f"[[say:{i}]]", "prompt_cache_key": f"conv-{i}"},
            headers=auth_headers(Connection="close"), timeout=30)
        assert resp.status_code == 200
        assert resp.json()["output"][-1]["content"][0]["text"] == str(i)
    recs = upstream.requests
    assert len(recs) == 24 and {r["transport"] for r in recs} == {"http"}
    assert {r["account"] for r in recs} == {"acct-a", "acct-b"}
    shakes = upstream.handshakes
    assert sorted(s["account"] for s in shakes) == ["acct-a", "acct-b"]
    assert {s["status"] for s in shakes} == {426}


def test_a_long_answer_over_the_backend_socket_is_relayed_whole_and_a_leaving_client_closes_it(
        gateway_factory, upstream, tmp_path):
    """SSE answers read from the backend's WebSocket go through the worker's relay too:
    every delta arrives in order, and a client that leaves while the backend is silent
    has the backend socket closed at once (not at the next keep-alive write)."""
    gw = start(gateway_factory, upstream, tmp_path, CODEX_GATEWAY_SERVER_KEEPALIVE_SECONDS=1,
               CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT="websocket")
    text = " ".join(f"w{i}" for i in range(600))
    upstream.configure(deltas=300, event_delay=0.001, reply=text)
    resp = requests.post(gw.url + "/v1/responses", json={"model": MODEL, "input": "hi",
                         "stream": True}, headers=auth_headers(), stream=True, timeout=30)
    deltas = [json.loads(line[6:])["delta"] for line in resp.iter_lines()
              if line.startswith(b"data: ") and b'"response.output_text.delta"' in line]
    assert len(deltas) > 250 and "".join(deltas) == text  # every delta, in order
    assert upstream.requests[-1]["transport"] == "websocket"

    upstream.configure(deltas=4, event_delay=0.0, reply=None, silence=4)
    resp = requests.post(gw.url + "/v1/responses", json={"model": MODEL, "input": "again",
                         "stream": True}, headers=auth_headers(), stream=True, timeout=30)
    rec, took = leave_during_silence(resp, upstream)
    assert rec["transport"] == "websocket" and took < 0.5


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_priority_service_tier_reaches_the_backend_on_both_transports(
        gateway_factory, upstream, tmp_path, transport):
    gw = start(gateway_factory, upstream, tmp_path, CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT=transport)
    resp = requests.post(gw.url + "/v1/responses", json={
        "model": MODEL, "input": "[[say:fast]]", "service_tier": "priority"},
        headers=auth_headers(**{"session_id": "tier-1"}), timeout=30)
    assert resp.status_code == 200 and resp.json()["service_tier"] == "priority"
    rec = upstream.requests[-1]
    assert rec["body"]["service_tier"] == "priority"
    assert rec["transport"] == transport


@pytest.mark.parametrize("transport", ["websocket", "auto"])
def test_concurrent_turns_of_one_conversation_keep_their_sockets(
        gateway_factory, upstream, tmp_path, transport):
    """Four turns of one conversation at once, five times over: each wave finds the
    sockets the earlier ones used (none discarded when they came back)."""
    from concurrent.futures import ThreadPoolExecutor
    upstream.configure(event_delay=0.05)  # the turns of a wave overlap
    gw = start(gateway_factory, upstream, tmp_path, workers=1,
               CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT=transport,
               CODEX_GATEWAY_UPSTREAM_WEBSOCKET_OPEN_AFTER_TURNS=1)

    def turn(i):
        resp = requests.post(gw.url + "/v1/responses", json={
            "model": MODEL, "input": f"[[say:{i}]]", "prompt_cache_key": "shared"},
            headers=auth_headers(), timeout=30)
        assert resp.status_code == 200, resp.text

    with ThreadPoolExecutor(4) as pool:
        for wave in range(6):
            list(pool.map(turn, range(4)))
    shakes = upstream.handshakes
    assert 1 <= len(shakes) <= 4, len(shakes)  # discarding: up to 3 new ones per wave
    assert len(upstream.requests) == 24
