"""Integration fixtures: the fake upstream in-process, gunicorn in its own processes."""
from __future__ import annotations

import json
import time

import pytest
import requests

from gateway.sse import SSEParser
from tests.conftest import register_secret
from tests.fakes.codex_upstream import FakeCodexUpstream
from tests.fakes.jwt import codex_claims, make_jwt

CLIENT_KEY = register_secret("test-client-key-0123456789")
ACCESS_TOKEN_ACCOUNT = "acct-main"
LONG_SYSTEM = ("You are a careful assistant. " * 220).strip()  # > 1024 approx. tokens


@pytest.fixture
def upstream():
    with FakeCodexUpstream() as srv:
        yield srv


def write_auth_file(path, account_id=ACCESS_TOKEN_ACCOUNT, exp_in=3600) -> dict:
    token = register_secret(make_jwt(codex_claims(account_id, exp=int(time.time()) + exp_in)))
    register_secret("rt-" + account_id)
    data = {"OPENAI_API_KEY": None, "tokens": {"id_token": token, "access_token": token,
                                               "refresh_token": "rt-" + account_id,
                                               "account_id": account_id},
            "last_refresh": "2026-11-25T00:00:00Z"}
    path.write_text(json.dumps(data))
    return data


def gateway_env(upstream, tmp_path, **extra) -> dict:
    auth = tmp_path / "auth.json"
    if not auth.exists():
        write_auth_file(auth)
    env = {
        "CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": upstream.base_url + "/backend-api/codex",
        "CODEX_GATEWAY_UPSTREAM_OPENAI_BASE_URL": upstream.base_url + "/v1",
        "CODEX_GATEWAY_ACCOUNTS_AUTH_FILE": str(auth),
        "CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path / "state"),
        "CODEX_GATEWAY_AUTH_CLIENT_KEYS": CLIENT_KEY,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


OPENAI_KEY = register_secret("sk-test-openai-0123456789")


def auth_headers(**extra) -> dict:
    h = {"Authorization": f"Bearer {CLIENT_KEY}"}
    h.update(extra)
    return h


def stream_events(resp) -> list:
    """Read an SSE response with the gateway's own parser, timestamping each event."""
    parser = SSEParser()
    out = []
    for chunk in resp.iter_content(chunk_size=None):
        now = time.monotonic()
        out += [(now, e) for e in parser.feed(chunk)]
    out += [(time.monotonic(), e) for e in parser.flush()]
    return out


def post(gw, path, body, stream=False, headers=None, timeout=30):
    return requests.post(gw.url + path, json=body, headers=headers or auth_headers(),
                         stream=stream, timeout=timeout)
