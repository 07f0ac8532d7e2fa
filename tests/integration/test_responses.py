"""/v1/responses end to end: real gunicorn (2 workers) → fake Codex upstream."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from tests.support import (auth_headers, gateway_env, leave_during_silence, post,
                           stream_events)

BODY = {"model": "gpt-5-codex", "input": "Say hello", "stream": True}


@pytest.fixture
def gw(gateway_factory, upstream, tmp_path):
    return gateway_factory(gateway_env(upstream, tmp_path,
                                       CODEX_GATEWAY_UPSTREAM_READ_TIMEOUT=3,
                                       CODEX_GATEWAY_SERVER_KEEPALIVE_SECONDS=1), workers=2)


def test_streaming_passes_events_through(gw, upstream):
    resp = post(gw, "/v1/responses", BODY, stream=True)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["X-Accel-Buffering"] == "no"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["x-gateway-continuity"] == "conversation"
    assert resp.headers["x-codex-turn-state"].startswith("ts-")
    types = [e.type for _, e in stream_events(resp)]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    [rec] = upstream.requests
    body = rec["body"]
    assert body["stream"] is True and body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"] and body["instructions"] == ""
    assert rec["headers"]["session_id"] == rec["headers"]["session-id"] == body["prompt_cache_key"]
    assert rec["headers"]["chatgpt-account-id"] == "acct-main"
    assert rec["headers"]["Accept"] == "text/event-stream"


def test_non_stream_returns_the_final_response(gw):
    resp = post(gw, "/v1/responses", dict(BODY, stream=False))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["object"] == "response" and data["status"] == "completed"
    texts = [p["text"] for item in data["output"] if item["type"] == "message"
             for p in item["content"]]
    assert texts == ["Hello from the fake upstream."]
    assert "input_tokens_details" in data["usage"]


def test_streaming_is_not_buffered(gw, upstream):
    upstream.configure(event_delay=0.2)
    start = time.monotonic()
    resp = post(gw, "/v1/responses", BODY, stream=True)
    events = stream_events(resp)
    first, last = events[0][0] - start, events[-1][0] - start
    assert len(events) >= 8
    assert last > 1.4  # the upstream really spaced its events
    assert first < 0.6, f"first event after {first:.2f}s: buffered"


BAD_INPUTS = [
    ("non-JSON", "POST", "/v1/responses", b"{nope", auth_headers(), 400, "not valid JSON"),
    ("JSON array", "POST", "/v1/responses", b"[1,2]", auth_headers(), 400, "JSON object"),
    ("missing model", "POST", "/v1/responses", b'{"input":"x"}', auth_headers(), 400, "'model'"),
    ("model not string", "POST", "/v1/responses", b'{"model":5,"input":"x"}', auth_headers(), 400, "'model'"),
    ("input wrong type", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":5}', auth_headers(), 400, "'input'"),
    ("tools wrong type", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":"x","tools":{}}', auth_headers(), 400, "'tools'"),
    ("stream wrong type", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":"x","stream":"yes"}', auth_headers(), 400, "'stream'"),
    ("bad retention", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":"x","prompt_cache_retention":"forever"}', auth_headers(), 400, "prompt_cache_retention"),
    ("previous_response_id", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":"x","previous_response_id":"resp_1"}', auth_headers(), 400, "Previous response with id 'resp_1' not found"),
    ("chat bad messages", "POST", "/v1/chat/completions", b'{"model":"gpt-5-codex","messages":"hi"}', auth_headers(), 400, "messages"),
    ("oversized body", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":"' + b"x" * (2 * 1024 * 1024) + b'"}', auth_headers(), 413, "larger than"),
    ("unknown route", "GET", "/v1/nothing", b"", auth_headers(), 404, "Unknown route"),
    ("wrong method", "GET", "/v1/responses", b"", auth_headers(), 405, "Method not allowed"),
    ("missing key", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":"x"}', {}, 401, "Missing API key"),
    ("wrong key", "POST", "/v1/responses", b'{"model":"gpt-5-codex","input":"x"}', {"Authorization": "Bearer nope"}, 401, "Incorrect API key"),
    ("models without key", "GET", "/v1/models", b"", {}, 401, "Missing API key"),
]


@pytest.fixture
def small_gw(gateway_factory, upstream, tmp_path):
    return gateway_factory(gateway_env(upstream, tmp_path,
                                       CODEX_GATEWAY_SERVER_MAX_BODY_BYTES=1024 * 1024), workers=2)


@pytest.mark.parametrize("name,method,path,data,headers,status,needle",
                         BAD_INPUTS, ids=[r[0] for r in BAD_INPUTS])
def test_bad_input_gets_an_openai_error(small_gw, name, method, path, data, headers, status, needle):
    h = dict(headers, **{"Content-Type": "application/json"})
    resp = requests.request(method, small_gw.url + path, data=data, headers=h, timeout=10)
    assert resp.status_code == status
    assert resp.headers["Content-Type"].startswith("application/json")
    err = resp.json()["error"]
    assert needle in err["message"] and set(err) >= {"message", "type", "code"}
    assert "Traceback" not in resp.text


def test_models_and_health(small_gw):
    models = requests.get(small_gw.url + "/v1/models", headers=auth_headers(), timeout=5).json()
    assert models["object"] == "list" and {"id", "object", "owned_by"} <= set(models["data"][0])
    health = requests.get(small_gw.url + "/healthz", timeout=5).json()
    assert health["status"] == "ok" and health["accounts"] == 1


def test_no_account_is_a_clear_503(gateway_factory, upstream, tmp_path):
    env = gateway_env(upstream, tmp_path)
    env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"] = ""
    gw = gateway_factory(env, workers=1)
    health = requests.get(gw.url + "/healthz", timeout=5).json()
    assert health["accounts"] == 0 and "codex-gateway" in health["message"]
    resp = post(gw, "/v1/responses", BODY)
    assert resp.status_code == 503 and "codex-gateway" in resp.json()["error"]["message"]


# -- faults injected by the upstream ---------------------------------------------

def test_upstream_500_is_retried_once_then_a_502(gw, upstream):
    upstream.inject("http_500")
    resp = post(gw, "/v1/responses", BODY, stream=True)
    assert resp.status_code == 200  # one 500 is an unlucky attempt: retried, answered
    upstream.inject("http_500", count=2)
    resp = post(gw, "/v1/responses", BODY, stream=True)
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "upstream_error"
    assert [r["status"] for r in upstream.requests] == [500, 200, 500, 500]


def test_upstream_401_without_refresh_is_503_naming_login(gw, upstream):
    upstream.inject("http_401", count=5)
    resp = post(gw, "/v1/responses", BODY)
    assert resp.status_code == 503 and "codex-gateway login" in resp.json()["error"]["message"]


def test_usage_limit_is_429_with_retry_after(gw, upstream):
    upstream.inject("usage_limit", resets_in=120)
    resp = post(gw, "/v1/responses", BODY, stream=True)
    assert resp.status_code == 429
    assert 100 <= int(resp.headers["Retry-After"]) <= 121
    err = resp.json()["error"]
    assert err["code"] == "usage_limit_reached"  # one account: the upstream's own error
    assert err["message"] == "The usage limit has been reached"


@pytest.mark.parametrize("fault,code", [
    ("reset_mid_stream", "upstream_connection_lost"),
    ("truncate", "stream_truncated"),
    ("stall", "upstream_timeout"),
])
def test_mid_stream_failures_end_with_an_error_event(gw, upstream, fault, code):
    upstream.inject(fault, seconds=10)
    resp = post(gw, "/v1/responses", BODY, stream=True)
    assert resp.status_code == 200
    events = [e for _, e in stream_events(resp)]
    assert events[-1].type == "error" and events[-1].data["code"] == code


def test_response_failed_before_output_is_an_account_failure(gw, upstream):
    """A server error announced in the stream before any output is handled like an
    HTTP 5xx of that account: with one account the client gets a 502, not a stream."""
    upstream.inject("response_failed", count=2)  # the attempt and its one retry
    resp = post(gw, "/v1/responses", BODY, stream=True)
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "server_error"
    # The account now backs off; the only account cooling after an error is a 503.
    resp = post(gw, "/v1/responses", dict(BODY, stream=False))
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "account_cooling_down"
    assert int(resp.headers["Retry-After"]) >= 1
    assert len(upstream.requests) == 2


def test_response_failed_for_the_request_itself_passes_through(gw, upstream):
    """A failure no other account would avoid (the request is too long) is the upstream's
    answer: streamed as its own event, a 400 when not streaming."""
    upstream.inject("response_failed", code="context_length_exceeded", message="too long")
    events = [e for _, e in stream_events(post(gw, "/v1/responses", BODY, stream=True))]
    assert events[-1].type == "response.failed"
    assert events[-1].data["response"]["error"]["code"] == "context_length_exceeded"
    upstream.inject("response_failed", code="context_length_exceeded", message="too long")
    resp = post(gw, "/v1/responses", dict(BODY, stream=False))
    assert resp.status_code == 400 and resp.json()["error"] == {
        "message": "too long", "type": "invalid_request_error", "param": None,
        "code": "context_length_exceeded"}


def test_unreachable_upstream_is_502(gateway_factory, tmp_path, upstream):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = gateway_env(upstream, tmp_path)
    env["CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL"] = f"http://127.0.0.1:{dead}/backend-api/codex"
    gw = gateway_factory(env, workers=1)
    resp = post(gw, "/v1/responses", BODY)
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "upstream_unreachable"


def test_client_disconnect_closes_upstream_within_a_second(gw, upstream):
    upstream.configure(event_delay=0.2)
    resp = post(gw, "/v1/responses", BODY, stream=True)
    it = resp.iter_content(chunk_size=None)
    next(it)
    closed_at = time.time()
    resp.raw._fp.fp.raw._sock.close() if hasattr(resp.raw._fp.fp, "raw") else None
    resp.close()
    deadline = time.time() + 3
    rec = None
    while time.time() < deadline:
        rec = upstream.requests[-1]
        if rec.get("client_closed_at"):
            break
        time.sleep(0.05)
    assert rec and rec.get("client_closed_at"), rec
    assert rec["client_closed_at"] - closed_at < 1.0


def test_a_client_leaving_while_the_upstream_is_silent_closes_it_at_once(gw, upstream):
    """The worker's relay watches the client socket (EPOLLRDHUP): the upstream is closed
    when the client leaves, not at the next keep-alive write (1 s here) or the one after
    it, which is when a write first fails."""
    upstream.configure(silence=4)
    _, took = leave_during_silence(post(gw, "/v1/responses", BODY, stream=True), upstream)
    assert took < 0.5


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_a_stream_arrives_whole_over_http_1_0_and_1_1(gw, upstream, version):
    """HTTP/1.1 answers are relayed (chunked, the connection kept); an HTTP/1.0 client
    is not relayed: its answer is delimited by the connection's end, as gunicorn does."""
    body = json.dumps(BODY).encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(f"POST /v1/responses HTTP/{version}\r\nHost: x\r\n".encode()
                     + b"Authorization: " + auth_headers()["Authorization"].encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        raw = b""
        while b"response.completed" not in raw or (version == "1.1"
                                                   and not raw.endswith(b"0\r\n\r\n")):
            data = sock.recv(65536)
            if not data:
                break
            raw += data
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/{version} 200".encode())
        if version == "1.1":
            assert b"Transfer-Encoding: chunked" in head and rest.endswith(b"0\r\n\r\n")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # still alive
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        else:
            assert b"chunked" not in head and sock.recv(65536) == b""  # closed: the end
        assert b"event: response.completed" in rest


def test_keepalive_comments_during_silence(gw, upstream):
    upstream.configure(silence=2.5)
    resp = post(gw, "/v1/responses", BODY, stream=True)
    raw = b"".join(resp.iter_content(chunk_size=None))
    assert b": keep-alive" in raw and b"response.completed" in raw


def test_public_bind_without_keys_refuses_to_start(tmp_path):
    import subprocess
    import sys

    from tests.support import ROOT, free_port
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CODEX_GATEWAY_")}
    env.update(CODEX_GATEWAY_SERVER_BIND=f"0.0.0.0:{free_port()}",
               CODEX_GATEWAY_ACCOUNTS_STATE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                          "gateway.wsgi:app"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "codex-gateway keys create" in out.stderr + out.stdout
