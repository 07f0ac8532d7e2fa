"""Quick checks of the test fakes themselves (jwt, upstream, OAuth issuer)."""
from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes.codex_upstream import CODEX_PATH, OPENAI_PATH, FakeCodexUpstream
from tests.fakes.jwt import AUTH_CLAIM, codex_claims, make_jwt, read_claims
from tests.fakes.oauth_issuer import FakeOAuthIssuer, pkce_challenge
from tests.fakes.server import FakeProcess

CODEX_HEADERS = {"Authorization": "Bearer tok", "chatgpt-account-id": "acct-1"}


@pytest.fixture(scope="module")
def upstream_server():
    with FakeCodexUpstream() as srv:
        yield srv


@pytest.fixture
def upstream(upstream_server):
    upstream_server.reset()
    upstream_server.configure(reply=None, event_delay=0, silence=0, fast=False, strict_tokens=None)
    return upstream_server


@pytest.fixture
def issuer():
    with FakeOAuthIssuer() as srv:
        yield srv


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def codex_body(*items, **extra) -> dict:
    return {"model": "gpt-5-codex", "instructions": "Be brief.", "input": list(items) or
            [user("hi")], "stream": True, "store": False, **extra}


def parse_sse(text: str) -> list[dict]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        events.append(data)
    return events


def post_codex(srv, body, headers=CODEX_HEADERS, **kw):
    return requests.post(srv.base_url + CODEX_PATH, json=body, headers=headers, timeout=5, **kw)


def stream_events(srv, body, headers=CODEX_HEADERS) -> list[dict]:
    resp = post_codex(srv, body, headers)
    assert resp.status_code == 200, resp.text
    return parse_sse(resp.text)


def final_text(events) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


# -- jwt ------------------------------------------------------------------------

def test_jwt_round_trip_and_garbage():
    token = make_jwt(codex_claims("acct-9", plan="pro", exp=123))
    claims = read_claims(token)
    assert token.count(".") == 2 and all(token.split("."))
    assert claims["exp"] == 123
    assert claims[AUTH_CLAIM] == {"chatgpt_account_id": "acct-9", "chatgpt_plan_type": "pro",
                                  "chatgpt_user_id": "user-acct-9"}
    for bad in ("sk-test", "a.b.c", "", None, "a.bm90IGpzb24.c"):
        assert read_claims(bad) is None


# -- upstream: the happy path -----------------------------------------------------

def test_codex_stream_shape_and_headers(upstream):
    resp = post_codex(upstream, codex_body(reasoning={"effort": "low", "summary": "auto"}))
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert resp.headers["x-codex-turn-state"] == "ts-1"
    assert "x-codex-secondary-used-percent" in resp.headers
    events = parse_sse(resp.text)
    types = [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    created = events[0]["response"]
    assert created["status"] == "in_progress" and created["usage"] is None
    assert "response.reasoning_summary_text.delta" in types
    assert types.count("response.output_text.delta") >= 2
    assert final_text(events) == "Hello from the fake upstream."
    done = events[-1]["response"]
    assert types[-1] == "response.completed" and done["status"] == "completed"
    assert [item["type"] for item in done["output"]] == ["reasoning", "message"]
    assert done["output"][0]["encrypted_content"]
    usage = done["usage"]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]

    record = upstream.requests[0]
    assert record["status"] == 200 and record["account"] == "acct-1"
    assert record["headers"]["chatgpt-account-id"] == "acct-1"
    assert record["finished_at"] >= record["started_at"] and record["client_closed_at"] is None


def test_no_reasoning_item_without_reasoning(upstream):
    types = [e["type"] for e in stream_events(upstream, codex_body())]
    assert not any("reasoning" in t for t in types)


@pytest.mark.parametrize("change, status, expected", [
    ({"stream": False}, 400, {"detail": "Stream must be set to true"}),
    ({"store": True}, 400, {"detail": "Store must be set to false"}),
    ({"temperature": 0.2}, 400, {"detail": "Unsupported parameter: temperature"}),
    ({"prompt_cache_retention": "24h"}, 400,
     {"detail": "Unsupported parameter: prompt_cache_retention"}),
    ({"instructions": ["x"]}, 400, None),
    ({"input": "hi"}, 400, None),
])
def test_codex_rejects_like_the_backend(upstream, change, status, expected):
    resp = post_codex(upstream, {**codex_body(), **change})
    assert resp.status_code == status
    if expected:
        assert resp.json() == expected
    assert upstream.requests[-1]["status"] == status


def test_codex_auth_and_account_header(upstream):
    expired = make_jwt(codex_claims("acct-1", exp=time.time() - 10))
    assert post_codex(upstream, codex_body(), {"chatgpt-account-id": "a"}).json()["error"]["code"] \
        == "token_expired"
    resp = post_codex(upstream, codex_body(),
                      {**CODEX_HEADERS, "Authorization": f"Bearer {expired}"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "token_expired"
    assert post_codex(upstream, codex_body(), {"Authorization": "Bearer x"}).status_code == 400
    upstream.configure(strict_tokens=["good"])
    assert post_codex(upstream, codex_body()).status_code == 401
    assert post_codex(upstream, codex_body(), {**CODEX_HEADERS, "Authorization": "Bearer good"}) \
        .status_code == 200


def test_bad_json_and_unknown_route_do_not_break_the_server(upstream):
    resp = requests.post(upstream.base_url + CODEX_PATH, data=b"{nope", headers=CODEX_HEADERS)
    assert resp.status_code == 400 and "detail" in resp.json()
    assert requests.get(upstream.base_url + "/nowhere").status_code == 404
    assert post_codex(upstream, codex_body()).status_code == 200


def test_openai_flavour(upstream):
    url = upstream.base_url + OPENAI_PATH
    auth = {"Authorization": "Bearer sk-a"}
    body = {"model": "gpt-5", "input": "hi", "stream": False, "store": True,
            "prompt_cache_retention": "24h"}
    resp = requests.post(url, json=body, headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["object"] == "response" and resp.json()["status"] == "completed"
    assert upstream.requests[-1]["account"] == "sk-a"
    bad = requests.post(url, json={**body, "prompt_cache_retention": "1h"}, headers=auth)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "prompt_cache_retention"
    assert bad.json()["error"]["code"] == "invalid_value"
    streamed = requests.post(url, json={**body, "stream": True}, headers=auth)
    assert parse_sse(streamed.text)[-1]["type"] == "response.completed"
    assert "x-codex-turn-state" not in streamed.headers


def test_models(upstream):
    codex = requests.get(upstream.base_url + "/backend-api/codex/models", headers=CODEX_HEADERS)
    openai = requests.get(upstream.base_url + "/v1/models", headers={"Authorization": "Bearer k"})
    assert codex.json()["models"][0]["slug"] == "gpt-5-codex"
    assert openai.json()["data"][0]["id"] == "gpt-5-codex"


# -- upstream: prompt cache -----------------------------------------------------------

def cached(events) -> int:
    return events[-1]["response"]["usage"]["input_tokens_details"]["cached_tokens"]


def test_prompt_cache_growing_conversation(upstream):
    history = [user("x" * 6000)]
    headers = {**CODEX_HEADERS, "session_id": "s1"}
    first = stream_events(upstream, codex_body(*history, prompt_cache_key="k1"), headers)
    assert cached(first) == 0
    for turn in range(2):
        history += [first[-1]["response"]["output"][-1], user(f"turn {turn}")]
        events = stream_events(upstream, codex_body(*history, prompt_cache_key="k1"), headers)
        usage = events[-1]["response"]["usage"]
        assert usage["input_tokens_details"]["cached_tokens"] >= 1024
        assert usage["input_tokens_details"]["cached_tokens"] % 128 == 0
        assert usage["input_tokens_details"]["cached_tokens"] < usage["input_tokens"]
    # Any change of account, key or session header misses.
    for key, hdrs in (("k2", headers), ("k1", {**headers, "session_id": "s2"}),
                      ("k1", {**headers, "chatgpt-account-id": "acct-2"})):
        events = stream_events(upstream, codex_body(*history, prompt_cache_key=key), hdrs)
        assert cached(events) == 0
    # The hyphenated header is the fallback spelling of the same session key.
    hyphen = {**CODEX_HEADERS, "session-id": "s1"}
    assert cached(stream_events(upstream, codex_body(*history, prompt_cache_key="k1"), hyphen)) > 0
    assert upstream.requests[-1]["cache_key"] == ["codex", "acct-1", "k1", "s1"]
    other = {**CODEX_HEADERS, "session-id": "s3"}
    assert cached(stream_events(upstream, codex_body(*history, prompt_cache_key="k1"), other)) == 0
    assert cached(stream_events(upstream, codex_body(*history, prompt_cache_key="k1"), other)) > 0


def test_small_prompts_are_never_cached(upstream):
    stream_events(upstream, codex_body(prompt_cache_key="k"))
    assert cached(stream_events(upstream, codex_body(prompt_cache_key="k"))) == 0


# -- upstream: what the answer says ------------------------------------------------

def test_call_directive_then_tool_result(upstream):
    ask = user('please [[call:get_weather {"city": "Paris", "days": [1, [2]]}]]')
    events = stream_events(upstream, codex_body(ask))
    assert sum(e["type"] == "response.function_call_arguments.delta" for e in events) >= 2
    call = events[-1]["response"]["output"][-1]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris", "days": [1, [2]]}
    assert call["call_id"].startswith("call_") and call["id"].startswith("fc_")
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    assert final_text(stream_events(upstream, codex_body(ask, call, result))) == \
        "Tool result was: sunny"


def test_compaction_trigger_gets_exactly_one_compaction_item(upstream):
    """Codex's remote compaction v2: input ending in compaction_trigger needs exactly
    one compaction output item (the backend's behaviour, codex-cli-transports.md §3b)."""
    history = [user("Say ok"), {"type": "message", "role": "assistant", "id": "msg_1",
                                "content": [{"type": "output_text", "text": "ok"}]}]
    body = codex_body(*history, {"type": "compaction_trigger"}, reasoning={"summary": "auto"})
    events = stream_events(upstream, body)
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["compaction"]
    [item] = output
    assert item["id"].startswith("cmp_") and item["encrypted_content"]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == [item]
    # A later turn carries the compaction item in its input and is answered normally.
    later = codex_body(user("Say ok"), item, user("[[say:again]]"))
    assert final_text(stream_events(upstream, later)) == "again"


def test_say_schema_and_configured_reply(upstream):
    assert final_text(stream_events(upstream, codex_body(user("[[say:Bonjour]]")))) == "Bonjour"
    schema = {"type": "object", "required": ["name", "n", "ok", "tags"],
              "properties": {"name": {"type": "string"}, "n": {"type": "integer"},
                             "ok": {"type": "boolean"}, "tags": {"type": "array"}}}
    fmt = {"format": {"type": "json_schema", "name": "out", "strict": True, "schema": schema}}
    text = final_text(stream_events(upstream, codex_body(text=fmt)))
    assert json.loads(text) == {"name": "ok", "n": 1, "ok": True, "tags": []}
    requests.post(upstream.base_url + "/_fake/config", json={"reply": "Configured."})
    assert final_text(stream_events(upstream, codex_body())) == "Configured."


# -- upstream: faults ------------------------------------------------------------------

def test_http_faults_fifo_and_account_filter(upstream):
    upstream.inject("http_500", account="acct-2")
    upstream.inject("usage_limit", resets_in=30)
    resp = requests.post(upstream.base_url + "/_fake/faults",
                         json={"fault": "http_429", "count": 2})
    assert resp.json()["count"] == 2
    unknown = requests.post(upstream.base_url + "/_fake/faults", json={"fault": "nope"})
    assert unknown.status_code == 400

    usage = post_codex(upstream, codex_body())
    assert usage.status_code == 429
    error = usage.json()["error"]
    assert error["type"] == "usage_limit_reached" and error["resets_in_seconds"] == 30
    assert error["resets_at"] >= int(time.time()) + 29
    limited = post_codex(upstream, codex_body())
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert "try again in 1.5s" in limited.json()["error"]["message"]
    assert post_codex(upstream, codex_body(), {**CODEX_HEADERS, "chatgpt-account-id": "acct-2"}) \
        .status_code == 500
    assert post_codex(upstream, codex_body()).status_code == 429
    assert post_codex(upstream, codex_body()).status_code == 200
    assert upstream.faults == []
    assert [r["fault"] for r in upstream.requests] == \
        ["usage_limit", "http_429", "http_500", "http_429", None]
    upstream.inject("http_400_unsupported", param="service_tier")
    assert post_codex(upstream, codex_body()).json() == \
        {"detail": "Unsupported parameter: service_tier"}
    upstream.inject("http_401")
    assert post_codex(upstream, codex_body()).json()["error"]["code"] == "token_expired"


def test_in_stream_faults(upstream):
    upstream.inject("response_failed")
    failed = stream_events(upstream, codex_body())
    assert failed[-1]["type"] == "response.failed"
    assert failed[-1]["response"]["error"]["code"] == "server_error"
    upstream.inject("error_event")
    assert stream_events(upstream, codex_body())[-1]["code"] == "rate_limit_exceeded"
    upstream.inject("truncate")
    truncated = stream_events(upstream, codex_body())
    assert "response.completed" not in {e["type"] for e in truncated}
    assert truncated[-1]["type"] == "response.output_text.delta"
    upstream.inject("reset_mid_stream")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        post_codex(upstream, codex_body())


def test_stall_notices_client_disconnect(upstream):
    upstream.inject("stall", seconds=5)
    closed = read_first_line_then_close(upstream)
    record = wait_for(lambda: upstream.requests[-1], lambda r: r["finished_at"])
    assert record["fault"] == "stall"
    assert 0 <= record["client_closed_at"] - closed < 1.0


def test_event_delay_notices_client_disconnect_and_silence(upstream):
    upstream.configure(event_delay=0.5)
    closed = read_first_line_then_close(upstream)
    record = wait_for(lambda: upstream.requests[-1], lambda r: r["finished_at"])
    assert 0 <= record["client_closed_at"] - closed < 1.0 and record["finished_at"] - closed < 1.0

    upstream.configure(event_delay=0, silence=0.3)
    started = time.time()
    events = stream_events(upstream, codex_body())
    assert time.time() - started >= 0.3 and events[-1]["type"] == "response.completed"


def read_first_line_then_close(srv) -> float:
    """Start a stream, read one line, close the connection; returns when it closed."""
    resp = post_codex(srv, codex_body(), stream=True)
    lines = resp.iter_lines()  # kept alive: dropping it would close the connection early
    assert next(lines) == b"event: response.created"
    time.sleep(0.05)
    assert srv.requests[-1]["client_closed_at"] is None
    closed = time.time()
    resp.close()
    return closed


def wait_for(get, ready, timeout=2.0):
    deadline = time.time() + timeout
    while True:
        value = get()
        if ready(value) or time.time() > deadline:
            return value
        time.sleep(0.02)


def test_fast_mode_and_control_api_over_http(upstream):
    base = upstream.base_url
    cfg = requests.post(base + "/_fake/config", json={"fast": True, "event_delay": 1}).json()
    assert cfg["fast"] is True
    started = time.time()
    events = stream_events(upstream, codex_body())
    assert time.time() - started < 0.5
    assert sum(e["type"] == "response.output_text.delta" for e in events) == 1
    assert requests.get(base + "/_fake/requests").json()[0]["path"] == CODEX_PATH
    assert requests.post(base + "/_fake/config", json={"bogus": 1}).status_code == 400
    assert requests.post(base + "/_fake/reset").json() == {"ok": True}
    assert requests.get(base + "/_fake/requests").json() == []


def test_upstream_runs_as_a_process():
    with FakeProcess("tests.fakes.codex_upstream", "--fast") as proc:
        proc.request("POST", "/_fake/faults", {"fault": "http_500"})
        resp = requests.post(proc.base_url + CODEX_PATH, json=codex_body(), headers=CODEX_HEADERS)
        assert resp.status_code == 500
        assert post_codex(proc, codex_body()).status_code == 200
        assert [r["status"] for r in proc.request("GET", "/_fake/requests")] == [500, 200]
    assert proc.proc.returncode == 0


# -- OAuth issuer -----------------------------------------------------------------------

def refresh(issuer, token, form=False):
    payload = {"client_id": "app_x", "grant_type": "refresh_token", "refresh_token": token}
    if form:
        return requests.post(issuer.token_url, data=payload, timeout=5)
    return requests.post(issuer.token_url, json=payload, timeout=5)


def test_refresh_rotates_and_detects_reuse(issuer):
    seeded = issuer.add_account("acct-1", plan="pro", email="a@example.test")
    assert read_claims(seeded["access_token"])[AUTH_CLAIM]["chatgpt_account_id"] == "acct-1"
    first = refresh(issuer, seeded["refresh_token"])
    assert first.status_code == 200
    tokens = first.json()
    assert tokens["refresh_token"] != seeded["refresh_token"]
    assert tokens["access_token"] != seeded["access_token"]
    claims = read_claims(tokens["id_token"])
    assert claims["email"] == "a@example.test" and claims[AUTH_CLAIM]["chatgpt_plan_type"] == "pro"
    assert read_claims(tokens["access_token"])["exp"] > time.time() + 3000
    assert issuer.current_refresh_token("acct-1") == tokens["refresh_token"]

    reused = refresh(issuer, seeded["refresh_token"], form=True)
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "refresh_token_reused"
    issuer.set_refresh_state(tokens["refresh_token"], "expired")
    assert refresh(issuer, tokens["refresh_token"]).json()["error"]["code"] == \
        "refresh_token_expired"
    requests.post(issuer.base_url + "/_fake/refresh_tokens",
                  json={"refresh_token": tokens["refresh_token"], "state": "invalidated"})
    assert refresh(issuer, tokens["refresh_token"]).json()["error"]["code"] == \
        "refresh_token_invalidated"
    assert [c["status"] for c in issuer.calls] == [200, 401, 401, 401]
    assert issuer.calls[1]["content_type"] == "application/x-www-form-urlencoded"


def test_concurrent_refresh_race_with_delay(issuer):
    token = issuer.add_account("acct-1")["refresh_token"]
    issuer.configure(delay=0.2)
    results = []
    threads = [threading.Thread(target=lambda: results.append(refresh(issuer, token).status_code))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 401] and len(issuer.calls) == 2


def test_expired_access_token_is_refused_upstream(issuer, upstream):
    seeded = issuer.add_account("acct-1", expired=True)
    headers = {"Authorization": f"Bearer {seeded['access_token']}", "chatgpt-account-id": "acct-1"}
    assert post_codex(upstream, codex_body(), headers).json()["error"]["code"] == "token_expired"
    fresh = refresh(issuer, seeded["refresh_token"]).json()["access_token"]
    headers["Authorization"] = f"Bearer {fresh}"
    assert post_codex(upstream, codex_body(), headers).status_code == 200


def test_pkce_authorization_code(issuer):
    verifier = "v" * 50
    query = {"response_type": "code", "client_id": "app_x", "state": "st8",
             "redirect_uri": "http://localhost:1455/auth/callback",
             "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256",
             "account_id": "acct-7"}
    resp = requests.get(issuer.base_url + "/oauth/authorize", params=query, allow_redirects=False)
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert location.path == "/auth/callback" and params["state"] == "st8"
    form = {"grant_type": "authorization_code", "code": params["code"], "client_id": "app_x",
            "redirect_uri": query["redirect_uri"], "code_verifier": "wrong"}
    assert requests.post(issuer.token_url, data=form).status_code == 400
    good = requests.post(issuer.token_url, data={**form, "code_verifier": verifier})
    assert good.status_code == 200
    assert read_claims(good.json()["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == "acct-7"
    again = requests.post(issuer.token_url, data={**form, "code_verifier": verifier})
    assert again.status_code == 400  # codes are single-use


def test_device_flow(issuer):
    issuer.add_account("acct-d")
    base = issuer.base_url
    start = requests.post(base + "/api/accounts/deviceauth/usercode", json={"client_id": "app_x"})
    device = start.json()
    assert int(device["interval"]) >= 0
    poll = {"device_auth_id": device["device_auth_id"], "user_code": device["user_code"]}
    pending = requests.post(base + "/api/accounts/deviceauth/token", json=poll)
    assert pending.status_code == 403 and pending.json() == {"error": "authorization_pending"}
    requests.post(base + "/_fake/device/approve", json={"user_code": device["user_code"]})
    code = requests.post(base + "/api/accounts/deviceauth/token", json=poll).json()
    assert pkce_challenge(code["code_verifier"]) == code["code_challenge"]
    tokens = requests.post(issuer.token_url, data={
        "grant_type": "authorization_code", "code": code["authorization_code"],
        "redirect_uri": f"{base}/deviceauth/callback", "client_id": "app_x",
        "code_verifier": code["code_verifier"]})
    assert tokens.status_code == 200
    assert read_claims(tokens.json()["access_token"])[AUTH_CLAIM]["chatgpt_account_id"] == "acct-d"


def test_issuer_runs_as_a_process():
    with FakeProcess("tests.fakes.oauth_issuer") as proc:
        seeded = proc.request("POST", "/_fake/accounts", {"account_id": "acct-p"})
        resp = requests.post(f"{proc.base_url}/oauth/token", json={
            "grant_type": "refresh_token", "refresh_token": seeded["refresh_token"]})
        assert resp.status_code == 200
        current = proc.request("GET", "/_fake/refresh_token?account_id=acct-p")
        assert current["refresh_token"] == resp.json()["refresh_token"]
        assert len(proc.request("GET", "/_fake/calls")) == 1
