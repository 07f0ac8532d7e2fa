"""The Responses WebSocket end to end: a WebSocket client library → real gunicorn
(2 workers, gthread) → the fake Codex upstream over HTTP."""
from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support import CLIENT_KEY, accounts_env, LONG_SYSTEM, auth_headers, gateway_env, post, stream_events

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "codex-0.171-websocket-tool-turn.json"
TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")


def user(text):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


BASE = {"type": "message", "role": "developer", "id": "msg_base",
        "content": [{"type": "input_text", "text": LONG_SYSTEM}]}
FRAME = {"type": "response.create", "model": "gpt-5-codex", "stream": True, "store": False,
         "prompt_cache_key": "thread-1"}


@pytest.fixture
def gw(gateway_factory, upstream, tmp_path):
    return gateway_factory(gateway_env(upstream, tmp_path, CODEX_GATEWAY_UPSTREAM_READ_TIMEOUT=5,
                                       CODEX_GATEWAY_SERVER_KEEPALIVE_SECONDS=1), workers=2)


def ws_url(gw, path="/v1/responses"):
    return gw.url.replace("http://", "ws://") + path


def open_ws(gw, path="/v1/responses", **headers):
    h = auth_headers(**{"session-id": "thread-1", "thread-id": "thread-1", **headers})
    return connect(ws_url(gw, path), additional_headers=h, open_timeout=10, close_timeout=2)


def send(ws, frame):
    ws.send(frame if isinstance(frame, str) else json.dumps(frame))


def answer(ws, timeout=10) -> list[dict]:
    """The frames of one answer, up to its terminal frame."""
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=timeout)))
        if frames[-1]["type"] in TERMINAL:
            return frames


def prewarm(ws, items=(BASE,)) -> str:
    send(ws, {**FRAME, "generate": False, "input": list(items)})
    frames = answer(ws)
    assert [f["type"] for f in frames] == ["response.created", "response.in_progress",
                                           "response.completed"]
    assert frames[-1]["response"]["output"] == []
    return frames[-1]["response"]["id"]


def text_of(frames) -> str:
    return "".join(f.get("delta", "") for f in frames if f["type"] == "response.output_text.delta")


# -- the protocol -----------------------------------------------------------------------

def test_prewarm_is_answered_without_an_upstream_request(gw, upstream):
    with open_ws(gw) as ws:
        prewarm(ws)
        prewarm(ws)  # twice on one connection: still nothing upstream
    assert upstream.requests == []
    # The backend refuses WebSockets: one upgrade was tried for the prewarm, then the
    # account is on HTTP (which has no prewarm) and the gateway answers it.
    assert [s["status"] for s in upstream.handshakes] == [426]


@pytest.mark.parametrize("path", ["/v1/responses", "/backend-api/codex/responses"])
def test_delta_after_prewarm_reaches_the_upstream_as_the_full_input(gw, upstream, path):
    with open_ws(gw, path) as ws:
        rid = prewarm(ws)
        meta = {"turn_id": "turn-1", "x-codex-turn-metadata": '{"turn_id":"turn-1"}',
                "x-codex-window-id": "thread-1:0"}
        send(ws, {**FRAME, "previous_response_id": rid, "input": [user("[[say:first]]")],
                  "client_metadata": meta})
        one = answer(ws)
        assert one[0]["type"] == "response.created" and one[-1]["type"] == "response.completed"
        assert text_of(one) == "first"
        # Every upstream event arrived, in order, one frame each.
        assert [f["sequence_number"] for f in one] == list(range(len(one)))
        first_id = one[-1]["response"]["id"]
        reply = one[-1]["response"]["output"][-1]
        send(ws, {**FRAME, "previous_response_id": first_id, "input": [user("[[say:second]]")],
                  "client_metadata": meta})
        two = answer(ws)
        assert text_of(two) == "second"
    first, second = upstream.requests
    assert first["body"]["input"] == [BASE, user("[[say:first]]")]
    assert second["body"]["input"] == [BASE, user("[[say:first]]"), reply, user("[[say:second]]")]
    for rec in (first, second):
        body, headers = rec["body"], rec["headers"]
        assert "previous_response_id" not in body and "generate" not in body
        assert body["stream"] is True and body["store"] is False
        assert body["prompt_cache_key"] == headers["session_id"] == headers["session-id"]
        assert headers["x-codex-turn-metadata"] == '{"turn_id":"turn-1"}'
        assert headers["x-codex-window-id"] == "thread-1:0"
    # One envelope; the second turn is served from the prompt cache.
    assert first["cache_key"] == second["cache_key"]
    assert first["cached_tokens"] == 0 and second["cached_tokens"] > 1000
    # The upstream's sticky turn state is echoed within the turn, as Codex does over HTTP.
    assert second["headers"]["x-codex-turn-state"] == "ts-%d" % first["id"]


def test_unknown_previous_response_is_previous_response_not_found(gw, upstream):
    with open_ws(gw) as ws:
        send(ws, {**FRAME, "previous_response_id": "resp_from_another_connection",
                  "input": [user("hi")]})
        [err] = answer(ws)
        assert err["type"] == "error" and err["status"] == 400
        assert err["error"]["code"] == "previous_response_not_found"
        # Codex then resends the full request: it works on the same connection too.
        send(ws, {**FRAME, "input": [BASE, user("hi")]})
        assert answer(ws)[-1]["type"] == "response.completed"
    # A new connection knows nothing of the old one's responses.
    with open_ws(gw) as ws:
        rid = prewarm(ws)
    with open_ws(gw) as ws:
        send(ws, {**FRAME, "previous_response_id": rid, "input": []})
        assert answer(ws)[0]["error"]["code"] == "previous_response_not_found"
    assert len(upstream.requests) == 1


BAD_FRAMES = [
    ("not JSON", "{nope", "invalid_json"),
    ("unknown type", json.dumps({"type": "response.append", "input": []}), "unsupported_frame_type"),
    ("missing model", json.dumps({"type": "response.create", "input": []}), "invalid_request"),
    ("input wrong type", json.dumps({**FRAME, "input": 5}), "invalid_request"),
    ("bad retention", json.dumps({**FRAME, "input": [], "prompt_cache_retention": "forever"}),
     "invalid_value"),
]


def test_bad_frames_get_error_frames_and_the_connection_stays_usable(gw, upstream):
    with open_ws(gw) as ws:
        for name, frame, code in BAD_FRAMES:
            send(ws, frame)
            [err] = answer(ws)
            assert err["type"] == "error" and err["status"] == 400, name
            assert err["error"]["code"] == code, (name, err)
            assert err["error"]["type"] == "invalid_request_error" and err["error"]["message"]
        ws.send(b"\x00binary")
        assert answer(ws)[0]["error"]["code"] == "invalid_frame"
        send(ws, {**FRAME, "input": [user("still there?")]})
        assert answer(ws)[-1]["type"] == "response.completed"
    assert len(upstream.requests) == 1


def test_upstream_refusal_and_failure_after_output_are_error_frames(gw, upstream):
    with open_ws(gw) as ws:
        upstream.inject("http_400_unsupported", param="frobnicate")  # a body it rejects
        send(ws, {**FRAME, "input": [user("hi")]})
        [err] = answer(ws)
        assert err["status"] == 400 and "frobnicate" in err["error"]["message"]
        upstream.configure(event_delay=0.05)  # output is read before the reset drops it
        upstream.inject("reset_mid_stream")
        send(ws, {**FRAME, "prompt_cache_key": "thread-2", "input": [user("hi")]})
        frames = answer(ws)
        assert "response.output_text.delta" in [f["type"] for f in frames], frames
        assert frames[-1]["type"] == "error" and frames[-1]["status"] == 502
        assert frames[-1]["error"]["code"] == "upstream_connection_lost"
        send(ws, {**FRAME, "prompt_cache_key": "thread-2", "input": [user("again")]})
        assert answer(ws)[-1]["type"] == "response.completed"


def test_upstream_failure_before_output_fails_over_to_the_next_account(
        gateway_factory, upstream, tmp_path):
    env = accounts_env(upstream, tmp_path, ("acct-a", "acct-b"))
    gw = gateway_factory(env, workers=2)
    upstream.inject("http_500", count=2)  # the first is retried on the same account
    with open_ws(gw) as ws:
        send(ws, {**FRAME, "input": [user("hi")]})
        assert answer(ws)[-1]["type"] == "response.completed"
    failed, retried, served = upstream.requests
    assert failed["status"] == retried["status"] == 500 and served["status"] == 200
    assert failed["account"] == retried["account"] != served["account"]


# -- the upgrade ------------------------------------------------------------------------

@pytest.mark.parametrize("headers,message", [
    ({}, "Missing API key"),
    ({"Authorization": "Bearer wrong-key"}, "Incorrect API key"),
])
def test_wrong_or_missing_key_is_401_before_any_handshake(gw, upstream, headers, message):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(gw), additional_headers=headers, open_timeout=10)
    resp = info.value.response
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == "application/json"
    err = json.loads(resp.body)["error"]
    assert message in err["message"] and err["type"] == "authentication_error"
    assert "wrong-key" not in resp.body.decode()
    assert upstream.requests == []


def test_websockets_off_is_426_so_clients_fall_back_at_once(gateway_factory, upstream, tmp_path):
    gw = gateway_factory(gateway_env(upstream, tmp_path, CODEX_GATEWAY_SERVER_WEBSOCKETS="false"),
                         workers=2)
    for path in ("/v1/responses", "/backend-api/codex/responses"):
        with pytest.raises(InvalidStatus) as info:
            connect(ws_url(gw, path), additional_headers=auth_headers(), open_timeout=10)
        resp = info.value.response
        assert resp.status_code == 426, path
        assert json.loads(resp.body)["error"]["code"] == "websockets_disabled"
    # HTTP is untouched, and a plain GET is still the 405 of the POST-only route.
    resp = post(gw, "/v1/responses", {"model": "gpt-5-codex", "input": "hi"})
    assert resp.status_code == 200
    assert requests.get(gw.url + "/v1/responses", headers=auth_headers(), timeout=10) \
        .status_code == 405


def test_bad_handshake_is_a_json_error(gw):
    def raw(version):
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
            s.sendall(b"GET /v1/responses HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                      b"Upgrade: websocket\r\nSec-WebSocket-Version: " + version + b"\r\n"
                      b"Sec-WebSocket-Key: bad\r\nAuthorization: Bearer " + CLIENT_KEY.encode()
                      + b"\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data.decode()
    assert raw(b"8").startswith("HTTP/1.1 426") and "Sec-WebSocket-Version: 13" in raw(b"8")
    bad_key = raw(b"13")
    assert bad_key.startswith("HTTP/1.1 400") and "invalid_websocket_handshake" in bad_key


# -- compaction -----------------------------------------------------------------------

HISTORY = [BASE, user("Say ok"), {"type": "message", "role": "assistant", "id": "msg_probe_1",
                                  "status": "completed", "content": [
                                      {"type": "output_text", "text": "ok", "annotations": []}]}]
TRIGGER = {"type": "compaction_trigger"}


def test_remote_compaction_passes_through_both_transports(gw, upstream):
    # HTTP: the trigger reaches the upstream untouched, the compaction item comes back.
    resp = post(gw, "/v1/responses", {**FRAME, "input": HISTORY + [TRIGGER]}, stream=True)
    done = [e.data for _, e in stream_events(resp) if e.type == "response.completed"][0]
    [http_item] = done["response"]["output"]
    assert http_item["type"] == "compaction" and http_item["encrypted_content"]
    # WebSocket: the same connection, previous_response_id + a delta ending in the trigger.
    with open_ws(gw) as ws:
        rid = prewarm(ws, HISTORY[:1])
        send(ws, {**FRAME, "previous_response_id": rid, "input": HISTORY[1:] + [TRIGGER]})
        frames = answer(ws)
        [ws_item] = frames[-1]["response"]["output"]
        assert ws_item["type"] == "compaction"
        # The next turn carries the compaction item: untouched on both transports.
        after = [BASE, user("Say ok"), ws_item, user("[[say:ok again]]")]
        send(ws, {**FRAME, "input": after})
        assert text_of(answer(ws)) == "ok again"
    resp = post(gw, "/v1/responses", {**FRAME, "input": [BASE, user("Say ok"), http_item,
                                                         user("[[say:ok again]]")]})
    assert resp.status_code == 200
    inputs = [r["body"]["input"] for r in upstream.requests]
    assert inputs[0] == HISTORY + [TRIGGER] and inputs[1] == HISTORY + [TRIGGER]
    assert inputs[2] == after and inputs[3][2] == http_item


# -- disconnects and shutdown -------------------------------------------------------------

def test_client_gone_mid_response_closes_the_upstream_within_a_second(gw, upstream):
    upstream.configure(silence=10)  # the upstream "thinks" after response.in_progress
    with open_ws(gw) as ws:
        send(ws, {**FRAME, "input": [user("think")]})
        assert json.loads(ws.recv(timeout=10))["type"] == "response.created"
        ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
        gone = time.time()
    deadline = gone + 5
    while time.time() < deadline and not upstream.requests[-1]["client_closed_at"]:
        time.sleep(0.05)
    rec = upstream.requests[-1]
    assert rec["client_closed_at"], "the upstream never saw the client leave"
    assert rec["client_closed_at"] - gone < 0.5  # the relay loop sees the socket end at once


def test_a_ping_while_an_answer_streams_is_answered_at_once(gw, upstream):
    """The relay loop reads the client's frames while it writes the answer."""
    upstream.configure(event_delay=0.3)  # ~3 s of answer
    with open_ws(gw) as ws:
        send(ws, {**FRAME, "input": [user("a long answer")]})
        assert json.loads(ws.recv(timeout=10))["type"] == "response.created"
        pong = ws.ping()
        started = time.monotonic()
        assert pong.wait(2.0), "no pong while the answer streamed"
        assert time.monotonic() - started < 1.0
        frames = answer(ws)
        assert frames[-1]["type"] == "response.completed"
        assert time.monotonic() - started > 1.0  # the pong came mid-answer
        send(ws, {**FRAME, "input": [user("again")]})  # the socket goes on as before
        assert answer(ws)[-1]["type"] == "response.completed"


def test_graceful_shutdown_finishes_the_response_then_closes_with_1001(
        gateway_factory, upstream, tmp_path):
    gw = gateway_factory(gateway_env(upstream, tmp_path,
                                     CODEX_GATEWAY_SERVER_GRACEFUL_TIMEOUT=20), workers=1)
    upstream.configure(event_delay=0.2)
    with open_ws(gw) as ws:
        send(ws, {**FRAME, "input": [user("a long answer")]})
        assert json.loads(ws.recv(timeout=10))["type"] == "response.created"
        gw.proc.send_signal(signal.SIGTERM)
        frames = answer(ws)
        assert frames[-1]["type"] == "response.completed"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    gw.proc.wait(15)


# -- a real capture -------------------------------------------------------------------------

def test_captured_codex_frames_replayed_reach_the_upstream_in_full(gw, upstream):
    """Codex 0.171's first connection of a tool turn (prewarm, turn, tool follow-up),
    replayed with the gateway's response ids in place of the capture server's."""
    capture = json.loads(FIXTURE.read_text())
    upgrade = capture[0]["headers"]
    frames = [e["frame"] for e in capture if e["kind"] == "client_frame"]
    keep = ("user-agent", "originator", "openai-beta", "x-codex-turn-metadata",
            "x-codex-beta-features", "x-client-request-id", "session-id", "thread-id",
            "x-codex-window-id")
    headers = {k: v for k, v in upgrade.items() if k in keep}
    ids = {}
    start = len(gw.logs())
    with connect(ws_url(gw), additional_headers=auth_headers(**headers), open_timeout=10) as ws:
        for i, frame in enumerate(frames):
            frame = dict(frame)
            if "previous_response_id" in frame:
                frame["previous_response_id"] = ids[frame["previous_response_id"]]
            send(ws, frame)
            got = answer(ws)
            assert got[-1]["type"] == "response.completed", got[-1]
            captured_id = [e for e in capture if e["kind"] == "server_answer"][i]["response_id"]
            ids[captured_id] = got[-1]["response"]["id"]
    turn, follow_up = upstream.requests  # the prewarm never reached it
    full_turn = frames[0]["input"] + frames[1]["input"]
    assert turn["body"]["input"] == full_turn
    assert follow_up["body"]["input"][:len(full_turn)] == full_turn
    assert follow_up["body"]["input"][-1] == frames[2]["input"][0]
    for rec in (turn, follow_up):
        h = {k.lower(): v for k, v in rec["headers"].items()}
        assert rec["body"]["prompt_cache_key"] == h["session-id"]
        assert json.loads(h["x-codex-turn-metadata"])["request_kind"] == "turn"
        assert "accept-encoding" not in h or "zstd" not in h["accept-encoding"]
        assert rec["body"]["client_metadata"]["thread_id"] == upgrade["thread-id"]
    assert {r["cache_key"][2] for r in (turn, follow_up)} == {turn["body"]["prompt_cache_key"]}
    # tidy: the follow-up appends, nothing to repair (gateway.prefix, docs/cache-breaks.md)
    logs = gw.logs_since(start, "transport=websocket", 2)
    assert logs.count("transport=websocket") >= 2
    assert "cache_break=" not in logs and "repaired=" not in logs


def test_codex_0171_item_kinds_and_metadata_pass_through_both_transports(gw, upstream):
    """additional_tools items (responses-lite models), item ids and client_metadata reach
    the upstream untouched over HTTP and over WebSocket."""
    tools_item = {"type": "additional_tools", "role": "developer", "id": "at_1",
                  "tools": [{"type": "namespace", "name": "multi_agent_v1", "tools": []}]}
    items = [tools_item, BASE, {**user("[[say:ok]]"), "id": "msg_client_1"}]
    meta = {"session_id": "thread-1", "turn_id": "t-9", "x-codex-window-id": "thread-1:0"}
    body = {**FRAME, "input": items, "client_metadata": meta,
            "reasoning": {"effort": "low", "context": "all_turns"}}
    assert post(gw, "/v1/responses", body).status_code == 200
    with open_ws(gw) as ws:
        send(ws, body)
        assert text_of(answer(ws)) == "ok"
    for rec in upstream.requests:
        assert rec["body"]["input"] == items
        assert rec["body"]["client_metadata"] == meta
        assert rec["body"]["reasoning"] == {"effort": "low", "context": "all_turns"}


def test_the_image_generation_tool_passes_through_with_partial_images(gw, upstream):
    """What Codex CLI sends for its image tool: the tool and its partial-image events
    pass through the client WebSocket unchanged."""
    upstream.reset()
    tool = {"type": "image_generation", "output_format": "png", "partial_images": 2}
    with open_ws(gw) as ws:
        send(ws, {**FRAME, "input": [BASE, user("[[image]] draw a cat")], "tools": [tool]})
        frames = answer(ws)
    kinds = [f["type"] for f in frames]
    assert kinds.count("response.image_generation_call.partial_image") == 2
    done = [f["item"] for f in frames if f["type"] == "response.output_item.done"]
    assert done[-1]["type"] == "image_generation_call" and done[-1]["result"]
    assert upstream.requests[-1]["body"]["tools"] == [tool]


def test_a_turn_state_never_follows_a_turn_to_another_account(gateway_factory, upstream, tmp_path):
    """Within one turn the connection echoes the upstream's turn state, but only to the
    account that issued it: after a failover the next account gets none."""
    env = accounts_env(upstream, tmp_path, ["acct-a", "acct-b"])
    gw2 = gateway_factory(env, workers=2)
    upstream.reset()
    meta = {"turn_id": "turn-1"}
    with open_ws(gw2) as ws:
        send(ws, {**FRAME, "input": [BASE, user("[[say:first]]")], "client_metadata": meta})
        answer(ws)
        served = upstream.requests[-1]["account"]
        other = ({"acct-a", "acct-b"} - {served}).pop()
        send(ws, {**FRAME, "input": [BASE, user("[[say:again]]")], "client_metadata": meta})
        answer(ws)
        assert upstream.requests[-1]["account"] == served
        assert upstream.requests[-1]["headers"]["x-codex-turn-state"] == \
            "ts-%d" % upstream.requests[-2]["id"]
        upstream.inject("usage_limit", account=served, resets_in=120)
        send(ws, {**FRAME, "input": [BASE, user("[[say:moved]]")], "client_metadata": meta})
        assert text_of(answer(ws)) == "moved"
    moved = upstream.requests[-1]
    assert moved["account"] == other
    assert "x-codex-turn-state" not in {k.lower() for k in moved["headers"]}


def test_a_previous_response_id_this_socket_never_saw_comes_from_the_store(gw, upstream):
    """Created over HTTP, continued over a WebSocket (and the other way round): the
    connection's memory does not hold the id, the response store does."""
    first = post(gw, "/v1/responses", {"model": "gpt-5-codex", "input": [user("[[say:one]]")]})
    assert first.status_code == 200, first.text
    with open_ws(gw) as ws:
        send(ws, {"type": "response.create", "model": "gpt-5-codex",
                  "previous_response_id": first.json()["id"], "input": [user("[[say:two]]")]})
        frames = answer(ws)
        assert frames[-1]["type"] == "response.completed", frames[-1]
        second = frames[-1]["response"]
        sent = upstream.requests[-1]["body"]
        assert "previous_response_id" not in sent
        assert sent["input"] == [user("[[say:one]]"), *first.json()["output"], user("[[say:two]]")]
        send(ws, {"type": "response.create", "model": "gpt-5-codex",
                  "previous_response_id": "resp_nowhere", "input": [user("x")]})
        error = answer(ws)[-1]
        assert error["type"] == "error" and "resp_nowhere" in json.dumps(error)
    third = post(gw, "/v1/responses", {"model": "gpt-5-codex", "input": [user("[[say:three]]")],
                                       "previous_response_id": second["id"]})
    assert third.status_code == 200, third.text
    assert len(upstream.requests[-1]["body"]["input"]) == 5
    kept = requests.get(f"{gw.url}/v1/responses/{second['id']}", headers=auth_headers(),
                        timeout=10).json()
    assert kept["model"] == "gpt-5-codex" and kept["output"] == second["output"]
