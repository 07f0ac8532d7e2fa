"""The upgrade's refusals, through Flask's test client (no socket to take over)."""
from __future__ import annotations

import pytest

from gateway import config as config_mod
from gateway.app import create_app

KEY = "unit-ws-key-0123456789"
UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def client(tmp_path, **server):
    env = {"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path),
           "CODEX_GATEWAY_AUTH_CLIENT_KEYS": KEY}
    env.update({f"CODEX_GATEWAY_SERVER_{k.upper()}": str(v) for k, v in server.items()})
    return create_app(config_mod.load(env=env)).test_client()


ROWS = [
    # (server settings, request headers, status, error code)
    ({}, {**UPGRADE, "Authorization": f"Bearer {KEY}"}, 426, "websockets_unavailable"),
    ({}, UPGRADE, 401, None),
    ({}, {**UPGRADE, "Authorization": "Bearer nope"}, 401, None),
    ({"websockets": "false"}, {**UPGRADE, "Authorization": f"Bearer {KEY}"}, 426,
     "websockets_disabled"),
    ({"websockets": "false"}, UPGRADE, 426, "websockets_disabled"),  # nothing to leak
    ({}, {**UPGRADE, "Authorization": f"Bearer {KEY}", "Sec-WebSocket-Version": "8"}, 426,
     "unsupported_websocket_version"),
    ({}, {**UPGRADE, "Authorization": f"Bearer {KEY}", "Sec-WebSocket-Key": "short"}, 400,
     "invalid_websocket_handshake"),
    ({}, {"Authorization": f"Bearer {KEY}"}, 405, "method_not_allowed"),  # plain GET
]


@pytest.mark.parametrize("server,headers,status,code", ROWS)
def test_upgrade_refusals_are_json(tmp_path, server, headers, status, code):
    for path in ("/v1/responses", "/backend-api/codex/responses"):
        resp = client(tmp_path, **server).get(path, headers=headers)
        assert resp.status_code == status, resp.data
        assert resp.is_json and resp.json["error"]["message"]
        if code:
            assert resp.json["error"]["code"] == code
        assert KEY not in resp.get_data(as_text=True)
