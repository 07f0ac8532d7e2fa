"""The shipped nginx server block, run by a real nginx in front of a real gunicorn.

Everything goes client → nginx → gunicorn → fake Codex upstream on 127.0.0.1;
``stack.url`` is nginx's plain listener, ``stack.nginx.tls_url`` its TLS one.
"""
from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import requests

from gateway.config import ServerConfig, UpstreamConfig
from tests.support import CLIENT_KEY, auth_headers, stream_events

from .harness import start_stack
from .nginx import SHIPPED, Nginx, directive, seconds, size

BODY = {"model": "gpt-5-codex", "input": "Say hello", "stream": True}
SHIPPED_TEXT = SHIPPED.read_text()


def post(url, body=BODY, headers=None, **kw):
    kw.setdefault("timeout", 30)
    return requests.post(url + "/v1/responses", json=body, headers=headers or auth_headers(),
                         stream=body.get("stream", False), **kw)


def test_nginx_accepts_the_config(stack):
    """`nginx -t` on the harness's rendering (test_guide.py runs it at the guide's paths)."""
    result = stack.nginx.test_config()
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


# -- streaming ---------------------------------------------------------------------

def first_and_last(url, verify=True):
    """Seconds from the request to the first and to the last event at the client."""
    start = time.monotonic()
    resp = post(url, verify=verify)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = stream_events(resp)
    assert events[-1][1].type == "response.completed"
    first, last = events[0][0] - start, events[-1][0] - start
    assert len(events) >= 8 and last > 1.4, f"upstream did not space its events: {last:.2f}s"
    return first, last


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_streaming_is_not_buffered(stack, upstream, scheme):
    """Events spaced 200 ms upstream arrive spaced at the client, over TLS too (the
    harness's http block even gzips text/event-stream, as an admin might)."""
    upstream.configure(event_delay=0.2)
    url, verify = ((stack.url, True) if scheme == "http"
                   else (stack.nginx.tls_url, stack.nginx.ca_file))
    first, last = first_and_last(url, verify)
    assert first < 0.6, f"first event after {first:.2f}s of {last:.2f}s: nginx buffered"


def test_the_config_alone_unbuffers_streams(stack, upstream):
    """Without the gateway's X-Accel-Buffering header (nginx told to ignore it), the
    shipped config still streams; the control, proxy_buffering on, holds it back."""
    upstream.configure(event_delay=0.2)
    ignore = "proxy_ignore_headers X-Accel-Buffering;"
    with Nginx(stack.gateway.port, location_extra=ignore) as nginx:
        first, last = first_and_last(nginx.url)
        assert first < 0.6, f"first event after {first:.2f}s of {last:.2f}s: buffered"
    with Nginx(stack.gateway.port, location_extra=ignore,
               overrides={"proxy_buffering": "on"}) as control:
        first, last = first_and_last(control.url)
        assert first > 1.4, "the control should have buffered: the test proves nothing"


def test_shipped_timeouts_cover_a_90_second_silence():
    """The values the scaled test below stands for."""
    read = seconds(directive(SHIPPED_TEXT, "proxy_read_timeout")[0])
    keepalive = ServerConfig().keepalive_seconds
    assert directive(SHIPPED_TEXT, "proxy_buffering") == ["off"]
    # nginx alone keeps a stream that is silent for 90 s (even without keep-alives)...
    assert read >= 90
    # ...and the gateway never lets a stream be silent long enough to reach it, nor the
    # 60 s default of any other nginx, nor Cloudflare's 100 s: a comment every 15 s.
    assert 0 < keepalive <= 15 and keepalive * 4 <= 60
    # The gateway gives up on a silent upstream (with an error event) before nginx does.
    assert UpstreamConfig().read_timeout < read


SCALE = 15  # 90 s silence → 6 s; keep-alive 15 s → 1 s; a proxy's 60 s limit → 4 s


@pytest.fixture(scope="module")
def short_proxy_limit(upstream, tmp_path_factory):
    """The shipped config with proxy_read_timeout scaled down to 60 s / SCALE, in front of
    two gateways: keep-alive every 15 s / SCALE, and keep-alive off."""
    limit = f"{60 // SCALE}s"
    with_ka = start_stack(upstream, tmp_path_factory.mktemp("ka"), "deploy-ka",
                          nginx_overrides={"proxy_read_timeout": limit},
                          CODEX_GATEWAY_SERVER_KEEPALIVE_SECONDS=15 / SCALE)
    without = start_stack(upstream, tmp_path_factory.mktemp("noka"), "deploy-noka",
                          nginx_overrides={"proxy_read_timeout": limit},
                          CODEX_GATEWAY_SERVER_KEEPALIVE_SECONDS=0)
    yield with_ka, without
    with_ka.stop()
    without.stop()


def _silent_stream(stack, silence):
    stack.upstream.configure(silence=silence)
    start = time.monotonic()
    resp = post(stack.url, timeout=60)
    assert resp.status_code == 200
    raw = b""
    try:
        for chunk in resp.iter_content(chunk_size=None):
            raw += chunk
    except requests.exceptions.ChunkedEncodingError:
        pass  # nginx cut the stream: the assertions below say so
    return raw, time.monotonic() - start


def test_silent_phase_survives_through_keepalive_comments(short_proxy_limit):
    """A 90 s silent reasoning phase, scaled by 1/15, behind a proxy whose read limit
    (60 s, scaled) is shorter than the silence: the keep-alive comments carry it."""
    with_ka, without = short_proxy_limit
    assert "proxy_read_timeout 4s;" in with_ka.nginx.conf_text
    raw, took = _silent_stream(with_ka, silence=90 / SCALE)
    assert b"response.completed" in raw, raw[-300:]
    assert raw.count(b": keep-alive") >= 4 and took >= 90 / SCALE

    # The control: the same silence without keep-alives is cut by the proxy's limit.
    raw, took = _silent_stream(without, silence=90 / SCALE)
    assert b"response.completed" not in raw and b": keep-alive" not in raw
    assert took < 90 / SCALE
    assert "upstream timed out" in without.nginx.error_log()


# -- disconnects ---------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["streaming", "silent"])
def test_client_disconnect_closes_the_upstream_within_2_seconds(stack, upstream, phase):
    """nginx closes its connection to gunicorn when the client leaves; the gateway's relay
    sees that at once, while events flow and while the upstream is silent alike."""
    upstream.configure(event_delay=0.2) if phase == "streaming" else upstream.configure(
        silence=4)
    body = json.dumps(BODY).encode()
    sock = socket.create_connection(("127.0.0.1", stack.nginx.port), timeout=10)
    sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: gateway.example.com\r\n"
                 b"Authorization: " + auth_headers()["Authorization"].encode() + b"\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    seen = b""
    while b"response.in_progress" not in seen:
        seen += sock.recv(65536)
    sock.close()
    closed_at = time.time()
    deadline = closed_at + 5
    rec = upstream.requests[-1]
    while time.time() < deadline and not rec["client_closed_at"]:
        time.sleep(0.05)
        rec = upstream.requests[-1]
    assert rec["client_closed_at"], "the upstream never saw the client leave"
    assert rec["client_closed_at"] - closed_at < (2.0 if phase == "streaming" else 0.5)
    assert rec["finished_at"] - rec["started_at"] < (1.5 if phase == "streaming" else 2.5)


# -- bodies ----------------------------------------------------------------------------

def test_limit_matches_the_gateway():
    limit = size(directive(SHIPPED_TEXT, "client_max_body_size")[0])
    assert limit == ServerConfig().max_body_bytes == 32 * 1024 * 1024


def test_five_megabyte_body_passes(stack, upstream):
    text = "word " * (1024 * 1024)  # 5 MiB
    body = {"model": "gpt-5-codex", "input": text, "stream": False}
    resp = post(stack.nginx.tls_url, body, verify=stack.nginx.ca_file, timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json()["status"] == "completed"
    [rec] = upstream.requests
    assert len(json.dumps(rec["body"])) > 5 * 1024 * 1024


def test_body_above_the_limit_is_an_openai_shaped_413(stack, upstream):
    limit = size(directive(SHIPPED_TEXT, "client_max_body_size")[0])
    data = b'{"model":"gpt-5-codex","input":"' + b"x" * limit + b'"}'
    resp = requests.post(stack.url + "/v1/responses", data=data, timeout=60,
                         headers=auth_headers(**{"Content-Type": "application/json"}))
    assert resp.status_code == 413
    assert resp.headers["Content-Type"] == "application/json"
    err = resp.json()["error"]
    assert err["code"] == "request_too_large" and err["type"] == "invalid_request_error"
    assert "32 MiB" in err["message"] and "<html" not in resp.text
    assert upstream.requests == []  # never reached the gateway's upstream


def test_body_above_the_limit_on_messages_is_an_anthropic_shaped_413(stack, upstream):
    """Claude Code and the Anthropic SDKs read {"type":"error","error":{type, message}}."""
    limit = size(directive(SHIPPED_TEXT, "client_max_body_size")[0])
    data = b'{"model":"claude-opus-5-5","max_tokens":10,"messages":[{"role":"user","content":"' \
        + b"x" * limit + b'"}]}'
    resp = requests.post(stack.url + "/v1/messages", data=data, timeout=60,
                         headers={"x-api-key": CLIENT_KEY, "Content-Type": "application/json",
                                  "anthropic-version": "2023-06-01"})
    assert resp.status_code == 413 and resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "request_too_large"
    assert "32 MiB" in body["error"]["message"] and "code" not in body["error"]
    assert upstream.requests == []


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/messages"])
def test_a_header_too_large_for_nginx_is_a_json_400(stack, upstream, path):
    """nginx's 494 (a header over large_client_header_buffers) is JSON too, not HTML."""
    resp = requests.post(stack.url + path, json={}, timeout=30,
                         headers=auth_headers(**{"X-Huge": "h" * 20000}))
    assert resp.status_code == 400 and resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:
        assert body["error"]["code"] == "bad_request"
    assert "<html" not in resp.text and upstream.requests == []


def test_gateway_down_is_a_502_in_the_dialect_of_the_path(upstream):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    try:
        with Nginx(dead.getsockname()[1]) as nginx:
            resp = post(nginx.url, dict(BODY, stream=False))
            messages = requests.post(nginx.url + "/v1/messages", timeout=30,
                                     json={"model": "claude-opus-5-5", "max_tokens": 10,
                                           "messages": [{"role": "user", "content": "hi"}]},
                                     headers={"x-api-key": CLIENT_KEY})
            gemini = requests.post(
                nginx.url + "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
                json={"contents": [{"parts": [{"text": "hi"}]}]}, timeout=30,
                headers={"x-goog-api-key": CLIENT_KEY})
    finally:
        dead.close()
    assert resp.status_code == 502 and resp.headers["Content-Type"] == "application/json"
    assert resp.json()["error"]["code"] == "gateway_unavailable"
    assert messages.status_code == 502
    assert messages.json() == {"type": "error", "error": {"type": "api_error", "message":
                               messages.json()["error"]["message"]}}
    assert "journalctl -u codex-gateway" in messages.json()["error"]["message"]
    assert gemini.status_code == 502 and gemini.json()["error"]["status"] == "UNAVAILABLE"
    assert gemini.json()["error"]["code"] == 502


# -- headers ---------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["session_id", "conversation_id"])
def test_underscore_session_header_reaches_the_gateway(stack, upstream, header):
    """gunicorn drops `session_id`; the shipped config re-sends it hyphenated."""
    h = auth_headers(**{header: "sess-underscore-1"})
    via_nginx = post(stack.url, dict(BODY, stream=False), headers=h)
    direct = post(stack.gateway.url, dict(BODY, stream=False), headers=h)
    assert via_nginx.status_code == direct.status_code == 200
    assert via_nginx.headers["x-gateway-continuity"] == "client_session"
    assert direct.headers["x-gateway-continuity"] == "conversation"  # the control


def test_hyphenated_session_header_gives_the_same_key_with_or_without_nginx(stack, upstream):
    """nginx replaces the client's session-id with its own Session-Id: one header, so
    the key through nginx is the key of a direct call (no 'a, a' duplicate)."""
    h = auth_headers(**{"session-id": "sess-hyphen-1"})
    for url in (stack.url, stack.gateway.url, stack.nginx.tls_url):
        resp = post(url, dict(BODY, stream=False), headers=h, verify=stack.nginx.ca_file)
        assert resp.headers["x-gateway-continuity"] == "client_session"
    keys = {r["body"]["prompt_cache_key"] for r in upstream.requests}
    assert len(keys) == 1 and len(upstream.requests) == 3


def test_headers_nginx_sends_upstream(upstream):
    """nginx straight in front of the recording fake: what gunicorn would receive."""
    with Nginx(upstream.port) as nginx:
        h = {"session_id": "s-1", "conversation_id": "c-1", "X-Forwarded-For": "203.0.113.9",
             "Authorization": "Bearer x"}
        requests.post(nginx.tls_url + "/v1/responses", json={"model": "m", "input": []},
                      headers=h, verify=nginx.ca_file, timeout=10)
    [rec] = upstream.requests
    got = {k.lower(): v for k, v in rec["headers"].items()}
    assert got["session-id"] == "s-1" and got["conversation-id"] == "c-1"
    assert got["x-forwarded-for"] == "127.0.0.1"  # replaced, not appended to
    assert got["x-real-ip"] == "127.0.0.1"
    assert got["x-forwarded-proto"] == "https"
    assert got["host"] == "127.0.0.1" and got["x-forwarded-host"] == "127.0.0.1"
    assert "connection" not in got  # Connection "": keep-alive to gunicorn, nothing to pass


# -- reloads ---------------------------------------------------------------------------

def _stream_while(stack, action, delay=0.2):
    stack.upstream.configure(event_delay=delay)
    resp = post(stack.url, timeout=30)
    it = resp.iter_content(chunk_size=None)
    raw = next(it)
    action()
    for chunk in it:
        raw += chunk
    return raw


def test_reloads_do_not_cut_running_streams(upstream, tmp_path_factory):
    """systemctl reload codex-gateway (gunicorn HUP) and systemctl reload nginx
    (nginx HUP) in the middle of a stream: it finishes, and new requests work."""
    s = start_stack(upstream, tmp_path_factory.mktemp("reload"), "deploy-reload",
                    CODEX_GATEWAY_SERVER_GRACEFUL_TIMEOUT=30)
    try:
        raw = _stream_while(s, lambda: s.gateway.proc.send_signal(signal.SIGHUP))
        assert b"response.completed" in raw
        raw = _stream_while(s, s.nginx.reload)
        assert b"response.completed" in raw
        time.sleep(0.5)
        resp = post(s.url, dict(BODY, stream=False))
        assert resp.status_code == 200 and resp.json()["status"] == "completed"
        assert "Handling signal: hup" in s.gateway.logs()
    finally:
        s.stop()


def test_nginx_s_access_log_never_holds_a_query_string(stack, upstream):
    """A key sent in the URL (`?key=`, Google's REST style) reaches neither log:
    the shipped log_format writes the path without its query, on both listeners."""
    secret = "AIzaSy-query-secret-0123456789"
    for url in (stack.url, f"http://127.0.0.1:{stack.nginx.http_port}"):
        requests.get(f"{url}/v1/models?key={secret}&alt=json", headers=auth_headers(),
                     timeout=10, allow_redirects=False)
    deadline = time.monotonic() + 5
    access = ""
    while access.count("/v1/models") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        access = (stack.nginx.prefix / "access.log").read_text()
    assert access.count('"GET /v1/models HTTP/1.1"') == 2, access[-2000:]
    assert secret not in access and "alt=json" not in access
    assert secret not in stack.gateway.logs()
