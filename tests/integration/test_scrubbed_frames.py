"""F4 over the client WebSocket: an upstream that echoes the account's token and
account id (and puts markup in its codes) reaches the client's frames scrubbed.
Real gunicorn, a WebSocket client library, the fake upstream's echo fault."""
from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect

from tests.support import auth_headers, gateway_env

ECHO = "you sent {authorization} for {account_id}"
MARKUP = "<img src=x onerror=alert(1)>"
FAULTS = [
    ("echo", {"status": 400, "message": ECHO, "code": MARKUP}, 1),
    ("echo", {"status": 429, "message": ECHO, "code": "rate_limit_exceeded"}, 1),
    ("echo", {"status": 403, "message": ECHO}, 2),
    ("echo", {"status": 500, "message": ECHO, "code": MARKUP}, 2),
    ("response_failed", {"message": ECHO, "code": MARKUP}, 2),
    ("error_event", {"message": ECHO, "code": "rate_limit_exceeded"}, 2),
]


@pytest.fixture
def gw(gateway_factory, upstream, tmp_path):
    return gateway_factory(gateway_env(upstream, tmp_path), workers=1, threads=8, name="scrub")


def test_no_secret_in_any_websocket_frame(gw, upstream, tmp_path):
    tokens = json.loads((tmp_path / "auth.json").read_text())["tokens"]
    secrets = (tokens["access_token"], tokens["account_id"], "Bearer ")
    url = gw.url.replace("http://", "ws://") + "/v1/responses"
    frame = {"type": "response.create", "model": "gpt-5-codex", "stream": True, "store": False,
             "input": [{"type": "message", "role": "user",
                        "content": [{"type": "input_text", "text": "hi"}]}]}
    for i, (fault, params, count) in enumerate(FAULTS):
        upstream.reset()
        upstream.inject(fault, count=count, **params)
        with connect(url, additional_headers=auth_headers(), open_timeout=10) as ws:
            ws.send(json.dumps({**frame, "prompt_cache_key": f"t-{i}"}))
            frames = []
            while not frames or json.loads(frames[-1])["type"] not in (
                    "response.completed", "response.failed", "error"):
                frames.append(ws.recv(timeout=15))
        text = "\n".join(frames)
        assert json.loads(frames[-1])["type"] in ("response.failed", "error"), (fault, text[:300])
        for secret in secrets:
            assert secret not in text, (fault, params.get("status"), text[:500])
        assert "<img" not in text
    assert "Traceback" not in gw.logs()
