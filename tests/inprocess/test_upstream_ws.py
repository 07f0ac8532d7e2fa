"""The Codex backend over WebSocket, in process: a turn uploads only its new items,
answers and cache accounting match HTTP, faults and refusals behave as over HTTP."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fakes.codex_upstream import FakeCodexUpstream
from tests.support import LONG_SYSTEM

MODEL = "gpt-5-codex"
SYSTEM = {"type": "message", "role": "developer",
          "content": [{"type": "input_text", "text": LONG_SYSTEM}]}


def user(text):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@pytest.fixture
def upstream():
    """The backend with its WebSocket (overrides the tier's refusing default)."""
    with FakeCodexUpstream(websocket="accept") as srv:
        yield srv


SOCKET_FIRST = "upstream_websocket_open_after_turns"


@pytest.fixture
def make_client(make_client):
    """These tests are about the socket itself: a conversation's first turn opens it
    (``websocket_open_after_turns = 0``) unless a test says otherwise."""
    def make(accounts=("acct-a",), **settings):
        settings.setdefault(SOCKET_FIRST, 0)
        return make_client(accounts, **settings)
    return make


def sse_types(data: bytes) -> list[str]:
    return [line[7:].decode() for line in data.split(b"\n") if line.startswith(b"event: ")]


def responses_turns(gw, texts, key="conv-1", stream=False):
    """A Responses client's conversation: each turn sends the whole history back,
    the answer's output items included (as Codex CLI does over HTTP)."""
    history, answers = [SYSTEM], []
    for text in texts:
        history.append(user(text))
        resp = gw.post("/v1/responses", {"model": MODEL, "input": history, "stream": stream,
                                         "prompt_cache_key": key})
        assert resp.status_code == 200, resp.get_data()
        if stream:
            answers.append(resp.get_data())
            done = [json.loads(line[6:]) for line in resp.get_data().split(b"\n")
                    if line.startswith(b"data: ") and b'"response.completed"' in line][0]
            output = done["response"]["output"]
        else:
            output = resp.get_json()["output"]
            answers.append(output[-1]["content"][0]["text"])
        history += output
    return answers


def chat_turns(gw, texts, session="chat-1", reasoning=False):
    """An OpenCode-style Chat Completions conversation (the answer sent back as text)."""
    messages, answers = [{"role": "system", "content": LONG_SYSTEM}], []
    for text in texts:
        messages.append({"role": "user", "content": text})
        body = {"model": MODEL, "messages": messages}
        if reasoning:
            body["reasoning_effort"] = "low"
        resp = gw.post("/v1/chat/completions", body, headers={"x-session-id": session})
        assert resp.status_code == 200, resp.get_data()
        answer = resp.get_json()["choices"][0]["message"]["content"]
        answers.append(answer)
        messages.append({"role": "assistant", "content": answer})
    return answers


def messages_turns(gw, texts, session="claude-1"):
    """A Claude Code-style Messages conversation."""
    messages, answers = [], []
    for text in texts:
        messages.append({"role": "user", "content": text})
        resp = gw.post("/v1/messages", {"model": "claude-opus-5-5", "max_tokens": 100,
                                        "system": LONG_SYSTEM, "messages": messages},
                       headers={"x-session-id": session})
        assert resp.status_code == 200, resp.get_data()
        content = resp.get_json()["content"]
        answers.append("".join(b.get("text", "") for b in content))
        messages.append({"role": "assistant", "content": content})
    return answers


def accounting(records) -> list[tuple]:
    return [(r["cached_tokens"], r["input_tokens"], r["cache_key"]) for r in records]


TURNS = ["[[say:one]]", "[[say:two]]", "[[say:three]]", "[[say:four]]"]
# Long enough answers that the cached prefix crosses several 128-token steps.
LONG_TURNS = [f"[[say:answer {i} {'word ' * 60 * i}]]" for i in range(8)]


@pytest.mark.parametrize("converse", [responses_turns, chat_turns, messages_turns],
                         ids=["responses", "chat", "messages"])
def test_after_the_first_turn_only_the_new_items_are_uploaded(make_client, upstream, converse):
    answers = converse(make_client(), TURNS)
    assert answers == ["one", "two", "three", "four"]
    recs = upstream.requests
    assert [r["transport"] for r in recs] == ["websocket"] * 4
    assert recs[0]["wire"]["previous_response_id"] is None
    for prev, rec in zip(recs, recs[1:]):
        assert rec["wire"]["previous_response_id"] == f"resp_fake{prev['id']:04d}"
        assert rec["wire"]["input_items"] == 1  # the new user message, nothing else
        assert rec["wire_bytes"] < recs[0]["wire_bytes"] / 3
    assert len(upstream.handshakes) == 1  # one socket for the whole conversation
    # The backend saw the whole conversation every time.
    assert [len(r["body"]["input"]) for r in recs] == [
        len(recs[0]["body"]["input"]) + 2 * i for i in range(4)]


@pytest.mark.parametrize("converse", [responses_turns, chat_turns, messages_turns],
                         ids=["responses", "chat", "messages"])
def test_answers_and_cache_accounting_match_the_http_transport(make_client, upstream,
                                                               converse):
    turns = LONG_TURNS
    over_ws = converse(make_client(), turns)
    ws_records = upstream.requests
    upstream.reset()
    over_http = converse(make_client(upstream_codex_transport="http"), turns)
    http_records = upstream.requests
    assert [r["transport"] for r in ws_records] == ["websocket"] * len(turns)
    assert [r["transport"] for r in http_records] == ["http"] * len(turns)
    assert over_ws == over_http
    assert ws_records[0]["cached_tokens"] == 0 and ws_records[1]["cached_tokens"] > 1000
    # Every turn: the same prompt tokens and the same cached tokens, exactly. A Chat
    # or Messages client re-renders the answers in its own shape while over the
    # socket the backend continues from its own items; what the model sees is
    # the same, and that is what the backend counts.
    assert accounting(ws_records) == accounting(http_records)
    assert len({r["cached_tokens"] for r in ws_records[1:]}) > 1  # the cache grew
    if converse is responses_turns:  # the client sends the backend's own items back
        assert [r["body"]["input"] for r in ws_records] == [
            r["body"]["input"] for r in http_records]


def test_streamed_answers_are_the_same_bytes_as_over_http(make_client, upstream):
    over_ws = responses_turns(make_client(), TURNS[:2], stream=True)
    upstream.reset()
    over_http = responses_turns(make_client(upstream_codex_transport="http"), TURNS[:2],
                                stream=True)

    def stable(data: bytes) -> bytes:  # times: the fake's clock and the gateway's
        import re
        return re.sub(rb'"(created_at|completed_at|reset_at)": ?\d+', rb'"\1":0', data)

    assert [stable(a) for a in over_ws] == [stable(a) for a in over_http]
    assert sse_types(over_ws[0])[-1] == "response.completed"


def test_chat_reasoning_the_client_drops_still_continues(make_client, upstream):
    assert chat_turns(make_client(), TURNS[:3], reasoning=True) == ["one", "two", "three"]
    recs = upstream.requests
    assert [r["wire"]["input_items"] for r in recs[1:]] == [1, 1]
    # The backend kept its reasoning item: it is in the context it continued from.
    assert any(i.get("type") == "reasoning" for i in recs[1]["body"]["input"])


def test_another_conversation_gets_its_own_socket(make_client, upstream):
    gw = make_client()
    responses_turns(gw, TURNS[:2], key="a")
    responses_turns(gw, TURNS[:2], key="b")
    recs = upstream.requests
    assert [r["wire"]["previous_response_id"] is not None for r in recs] == [
        False, True, False, True]
    assert len(upstream.handshakes) == 2


def test_an_edited_history_is_sent_in_full_on_the_same_socket(make_client, upstream):
    gw = make_client()
    responses_turns(gw, TURNS[:2])
    resp = gw.post("/v1/responses", {"model": MODEL, "prompt_cache_key": "conv-1",
                                     "input": [SYSTEM, user("[[say:fresh]]")]})
    assert resp.get_json()["output"][-1]["content"][0]["text"] == "fresh"
    last = upstream.requests[-1]
    assert last["wire"]["previous_response_id"] is None and last["wire"]["input_items"] == 2
    assert len(upstream.handshakes) == 1


def test_previous_response_not_found_resends_in_full_once(make_client, upstream):
    gw = make_client()
    responses_turns(gw, TURNS[:1])
    upstream.forget_responses()
    history = upstream.requests[0]["body"]["input"]
    resp = gw.post("/v1/responses", {"model": MODEL, "prompt_cache_key": "conv-1",
                                     "input": history + [_output_of(upstream, 1),
                                                         user("[[say:two]]")]})
    assert resp.status_code == 200
    assert resp.get_json()["output"][-1]["content"][0]["text"] == "two"
    refused, full = upstream.requests[1:]
    assert refused["status"] == 400 and refused["wire"]["previous_response_id"]
    assert full["status"] == 200 and full["wire"]["previous_response_id"] is None
    assert full["wire"]["input_items"] == len(history) + 2
    assert len(upstream.handshakes) == 1  # on the same socket


def _output_of(upstream, request_id):
    """The answer item of request *request_id* (the fake's ids are deterministic)."""
    return {"id": f"msg_fake{request_id:04d}", "type": "message", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": "one",
                                              "annotations": []}]}


# -- refusal and fallback --------------------------------------------------------------------

@pytest.mark.parametrize("status", [426, 404, 500])
def test_a_refused_upgrade_falls_back_to_http_once_per_account(make_client, upstream, status):
    upstream.configure(websocket=status)
    gw = make_client(accounts=("acct-a", "acct-b"))
    for key in ("k1", "k2", "k3", "k4", "k5", "k6"):
        assert responses_turns(gw, TURNS[:1], key=key) == ["one"]
    assert {r["transport"] for r in upstream.requests} == {"http"}
    shakes = upstream.handshakes
    assert [s["status"] for s in shakes] == [status] * len(shakes)
    assert sorted(s["account"] for s in shakes) == sorted(
        {r["account"] for r in upstream.requests})  # one per account that served


def _marked(gw) -> dict:
    """The accounts the shared fallback file keeps on HTTP (empty: none)."""
    from gateway.upstream.ws.fallback import FALLBACK_FILE
    path = Path(gw.config.state_dir).expanduser() / FALLBACK_FILE
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("status", [401, 403, 429])
def test_a_refusal_about_the_account_is_served_over_http_without_the_mark(
        make_client, upstream, status):
    """A login or a limit is the account's, not the transport's: that request goes
    over HTTP, and the next one tries the socket again."""
    upstream.configure(websocket=status)
    gw = make_client()
    for key in ("k1", "k2", "k3"):
        assert responses_turns(gw, TURNS[:1], key=key) == ["one"]
    assert [s["status"] for s in upstream.handshakes] == [status] * 3  # one per request
    assert [r["transport"] for r in upstream.requests] == ["http"] * 3
    assert _marked(gw) == {}
    upstream.configure(websocket="accept")
    assert responses_turns(gw, TURNS[:1], key="k4") == ["one"]
    assert upstream.requests[-1]["transport"] == "websocket"


def test_an_upgrade_refused_for_an_expired_login_refreshes_it_then_uses_the_socket(
        make_client, upstream, tmp_path):
    from gateway.state.files import FileStore
    from gateway.state.records import codex_record
    from tests.fakes.oauth_issuer import FakeOAuthIssuer
    from tests.support import register_secret
    with FakeOAuthIssuer() as issuer:
        toks = issuer.add_account("acct-r")
        for name in ("access_token", "refresh_token", "id_token"):
            register_secret(toks[name])
        FileStore(tmp_path / "state").save(codex_record(toks))
        gw = make_client(accounts=(), oauth_issuer=issuer.base_url,
                         oauth_token_url=issuer.token_url, accounts_auth_file="")
        upstream.inject("http_401", at="upgrade")  # the login expired: refused at once...
        upstream.inject("http_401")                # ...and over HTTP
        assert responses_turns(gw, TURNS[:2]) == ["one", "two"]
        refreshes = [c for c in issuer.calls if c["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1
    shakes = upstream.handshakes
    assert [(s["status"], s["fault"]) for s in shakes] == [(401, "http_401"), (101, None)]
    new_token = shakes[1]["headers"]["Authorization"]
    register_secret(new_token.split()[-1])
    assert new_token != shakes[0]["headers"]["Authorization"]
    refused, served, second = upstream.requests
    assert (refused["transport"], refused["status"]) == ("http", 401)
    # Refreshed, the same request went on the socket; the next turn continued on it.
    assert (served["transport"], served["status"]) == ("websocket", 200)
    assert second["wire"]["previous_response_id"] == f"resp_fake{served['id']:04d}"
    assert _marked(gw) == {}


def test_an_upgrade_refused_for_a_usage_limit_cools_the_account_and_fails_over(
        make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    upstream.inject("usage_limit", at="upgrade", resets_in=300)
    upstream.inject("usage_limit", resets_in=300)
    assert responses_turns(gw, TURNS[:1]) == ["one"]
    limited, served = upstream.requests
    assert (limited["transport"], limited["status"], limited["fault"]) == (
        "http", 429, "usage_limit")
    assert served["transport"] == "websocket" and served["account"] != limited["account"]
    assert [s["status"] for s in upstream.handshakes] == [429, 101]
    assert _marked(gw) == {}  # the limited account is cooling, not on HTTP


def test_after_the_fallback_period_the_upgrade_is_tried_again(make_client, upstream):
    upstream.configure(websocket=426)
    gw = make_client(upstream_websocket_fallback_seconds=0.3)
    responses_turns(gw, TURNS[:1], key="k1")
    responses_turns(gw, TURNS[:1], key="k2")
    assert len(upstream.handshakes) == 1
    upstream.configure(websocket="accept")
    time.sleep(0.35)
    responses_turns(gw, TURNS[:1], key="k3")
    assert [s["status"] for s in upstream.handshakes] == [426, 101]
    assert [r["transport"] for r in upstream.requests] == ["http", "http", "websocket"]


def test_websocket_mode_never_falls_back(make_client, upstream):
    upstream.configure(websocket=426)
    gw = make_client(upstream_codex_transport="websocket")
    resp = gw.post("/v1/responses", {"model": MODEL, "input": "hi"})
    assert resp.status_code == 502
    err = resp.get_json()["error"]
    assert err["code"] == "upstream_error" and "codex_transport" in err["message"]
    assert upstream.requests == []


def test_http_mode_never_opens_a_socket(make_client, upstream):
    responses_turns(make_client(upstream_codex_transport="http"), TURNS[:2])
    assert upstream.handshakes == [] and {r["transport"] for r in upstream.requests} == {"http"}


def wait_for(predicate, limit=10.0):
    """Poll *predicate* (a background upgrade); bounded only to detect a hang."""
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_auto_serves_a_first_turn_over_http_and_opens_the_socket_for_the_next(
        make_client, upstream):
    gw = make_client(**{SOCKET_FIRST: 1})  # the shipped default
    responses_turns(gw, TURNS[:1], key="one-shot")
    assert upstream.handshakes == []  # a one-turn conversation never opens a socket
    upstream.reset()
    history = [SYSTEM]
    for i, text in enumerate(TURNS):
        history.append(user(text))
        resp = gw.post("/v1/responses", {"model": MODEL, "input": history,
                                         "prompt_cache_key": "conv-bg"})
        assert resp.status_code == 200, resp.get_data()
        history += resp.get_json()["output"]
        if i == 1:  # the second turn opened the socket in the background
            assert wait_for(lambda: len(upstream.handshakes) == 1)
    recs = upstream.requests
    assert [r["transport"] for r in recs] == ["http", "http", "websocket", "websocket"]
    assert recs[2]["wire"]["previous_response_id"] is None  # the socket's first: in full
    assert recs[3]["wire"]["previous_response_id"] == f"resp_fake{recs[2]['id']:04d}"
    assert recs[3]["wire"]["input_items"] == 1
    assert len(upstream.handshakes) == 1
    assert [len(r["body"]["input"]) for r in recs] == [2, 4, 6, 8]


def test_auto_never_waits_for_a_slow_upgrade_on_a_turns_path(make_client, upstream):
    upstream.configure(upgrade_delay=0.3)
    gw = make_client(**{SOCKET_FIRST: 1})
    responses_turns(gw, TURNS[:3], key="slow")  # turn 2 starts the upgrade; turn 3 is
    recs = upstream.requests                    # sent before it is answered: HTTP
    assert [r["transport"] for r in recs] == ["http"] * 3
    assert wait_for(lambda: [s["status"] for s in upstream.handshakes] == [101])
    responses_turns(gw, TURNS[:1], key="slow")
    assert upstream.requests[-1]["transport"] == "websocket"


def test_a_socket_that_breaks_before_answering_is_served_over_http(make_client, upstream):
    gw = make_client()
    upstream.inject("reset_at_once")
    assert responses_turns(gw, TURNS[:2]) == ["one", "two"]
    broken, *served = upstream.requests
    assert broken["transport"] == "websocket" and broken["fault"] == "reset_at_once"
    assert [r["transport"] for r in served] == ["http", "http"]  # the account is on HTTP now
    assert len(upstream.handshakes) == 1


def test_a_socket_that_breaks_after_response_created_is_served_over_http(make_client,
                                                                        upstream):
    gw = make_client()
    upstream.inject("reset_after_created")
    resp = gw.post("/v1/responses", {"model": MODEL, "input": "[[say:ok]]", "stream": True})
    types = sse_types(resp.get_data())
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.count("response.created") == 1 and "error" not in types
    assert [r["transport"] for r in upstream.requests] == ["websocket", "http"]


def test_a_stale_pooled_socket_is_replaced_by_a_fresh_one(make_client, upstream):
    gw = make_client()
    responses_turns(gw, TURNS[:1])
    upstream.inject("reset_at_once")  # the pooled socket breaks on the next turn
    history = upstream.requests[0]["body"]["input"] + [_output_of(upstream, 1),
                                                       user("[[say:two]]")]
    resp = gw.post("/v1/responses", {"model": MODEL, "prompt_cache_key": "conv-1",
                                     "input": history})
    assert resp.get_json()["output"][-1]["content"][0]["text"] == "two"
    recs = upstream.requests
    assert [r["transport"] for r in recs] == ["websocket"] * 3
    assert recs[2]["wire"]["previous_response_id"] is None  # a new socket holds nothing
    assert len(upstream.handshakes) == 2


# -- the stream machinery, fed by the socket -------------------------------------------------

def test_in_stream_rate_limit_before_output_fails_over(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    upstream.inject("error_event")
    resp = gw.post("/v1/responses", {"model": MODEL, "input": "hi", "stream": True})
    types = sse_types(resp.get_data())
    assert types[0] == "response.created" and types[-1] == "response.completed"
    first, second = upstream.requests
    assert first["account"] != second["account"] and first["fault"] == "error_event"
    assert {r["transport"] for r in upstream.requests} == {"websocket"}


def test_a_usage_limit_frame_is_the_upstreams_own_429(make_client, upstream):
    gw = make_client()
    upstream.inject("usage_limit", resets_in=120)
    resp = gw.post("/v1/responses", {"model": MODEL, "input": "hi"})
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "usage_limit_reached"
    assert 110 <= int(resp.headers["Retry-After"]) <= 121


def test_a_server_error_frame_fails_over(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    upstream.inject("http_500", count=2)  # the first is retried on the same account
    resp = gw.post("/v1/chat/completions",
                   {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200
    assert len({r["account"] for r in upstream.requests}) == 2


def test_an_unsupported_parameter_frame_is_learned_and_retried(make_client, upstream):
    upstream.configure(unsupported_params=["text"])
    gw = make_client()
    resp = gw.post("/v1/responses", {"model": MODEL, "input": "[[say:ok]]",
                                     "text": {"verbosity": "low"}})
    assert resp.status_code == 200
    assert resp.headers["x-gateway-dropped-params"] == "text"
    refused, served = upstream.requests
    assert refused["status"] == 400 and "text" not in served["body"]


def test_a_reset_after_output_is_an_error_event_and_the_next_turn_starts_afresh(
        make_client, upstream):
    gw = make_client()
    upstream.configure(event_delay=0.02)  # output read before the RST (which drops unread data)
    upstream.inject("reset_mid_stream")
    resp = gw.post("/v1/responses", {"model": MODEL, "input": "hi", "stream": True,
                                     "prompt_cache_key": "k"})
    types = sse_types(resp.get_data())
    assert "response.output_text.delta" in types and types[-1] == "error"
    assert b"upstream_connection_lost" in resp.get_data()
    assert responses_turns(gw, TURNS[:1], key="k") == ["one"]
    assert upstream.requests[-1]["wire"]["previous_response_id"] is None
    assert len(upstream.handshakes) == 2


def test_a_silent_socket_gets_keepalives_then_times_out(make_client, upstream):
    gw = make_client(server_keepalive_seconds=0.2, upstream_read_timeout=1)
    upstream.inject("stall", seconds=5)
    started = time.monotonic()
    resp = gw.post("/v1/responses", {"model": MODEL, "input": "hi", "stream": True})
    data = resp.get_data()
    assert time.monotonic() - started < 4
    assert data.count(b": keep-alive") >= 2
    assert sse_types(data) == ["response.created", "error"]
    assert b"upstream_timeout" in data
    deadline = time.monotonic() + 3  # the socket is closed: the backend sees it go
    while upstream.requests[0]["client_closed_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.requests[0]["client_closed_at"] is not None


def test_a_client_that_leaves_closes_the_upstream_socket(make_client, upstream):
    upstream.configure(event_delay=0.2)
    gw = make_client()
    resp = gw.client.post("/v1/responses", data=json.dumps(
        {"model": MODEL, "input": "hi", "stream": True}),
        headers={"Authorization": f"Bearer {_key()}", "Content-Type": "application/json"},
        buffered=False)
    chunks = iter(resp.response)
    next(chunks)
    closed = time.time()
    resp.close()  # the client went away: the response generator is closed
    deadline = time.monotonic() + 3
    while upstream.requests[0]["client_closed_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.requests[0]["client_closed_at"] - closed < 1.0


def _key():
    from tests.support import CLIENT_KEY
    return CLIENT_KEY


def test_the_log_line_says_which_upstream_transport_served(make_client, upstream, caplog):
    caplog.set_level("INFO", logger="gateway.request")
    make_client().post("/v1/responses", {"model": MODEL, "input": "hi"})
    upstream.configure(websocket=426)
    make_client().post("/v1/responses", {"model": MODEL, "input": "hi"})  # a new worker
    ws_line, http_line = [r.getMessage() for r in caplog.records if r.name == "gateway.request"]
    assert "outcome=completed" in ws_line and "account=codex-acct-a upstream=websocket" in ws_line
    assert "account=codex-acct-a upstream=http" in http_line


def test_two_clients_never_share_a_socket_even_with_one_key(make_client, upstream):
    from tests.support import CLIENT_KEY, register_secret
    other = register_secret("test-other-client-key-987654321")
    gw = make_client(auth_client_keys=f"{CLIENT_KEY},{other}",
                     continuity_scope_explicit_key="false")
    for key in (CLIENT_KEY, other):
        history = [SYSTEM, user("[[say:one]]")]
        for text in ("[[say:one]]", "[[say:two]]"):
            if text != "[[say:one]]":
                history.append(user(text))
            resp = gw.post("/v1/responses", {"model": MODEL, "input": history,
                                             "prompt_cache_key": "shared-thread"}, key=key)
            assert resp.status_code == 200
            history = history + resp.get_json()["output"]
    recs = upstream.requests
    assert len({tuple(r["cache_key"]) for r in recs}) == 1  # one upstream identity...
    assert len(upstream.handshakes) == 2                   # ...and a socket per client
    assert [r["wire"]["previous_response_id"] is not None for r in recs] == [
        False, True, False, True]
