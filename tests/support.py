"""Helpers shared by the test tiers (conftest files hold fixtures only)."""
from __future__ import annotations

import time

from gateway import config as config_mod
from gateway.accounts.store import Store, codex_record
from gateway.app import create_app
from tests.fakes.jwt import codex_claims, make_jwt

CLIENT_KEY = "test-client-key-0123456789"


def codex_tokens(account_id: str, exp_in: int = 3600) -> dict:
    token = make_jwt(codex_claims(account_id, exp=int(time.time()) + exp_in))
    return {"access_token": token, "id_token": token, "refresh_token": "rt-" + account_id,
            "account_id": account_id}


class InProcess:
    """The gateway app in this process, its accounts in a state dir of their own."""

    def __init__(self, upstream, tmp_path, accounts, settings: dict):
        state = tmp_path / "state"
        store = Store(state)
        for account_id in accounts:
            store.save(codex_record(codex_tokens(account_id)))
        env = {
            "CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": upstream.base_url + "/backend-api/codex",
            "CODEX_GATEWAY_UPSTREAM_OPENAI_BASE_URL": upstream.base_url + "/v1",
            "CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(state),
            "CODEX_GATEWAY_AUTH_CLIENT_KEYS": CLIENT_KEY,
            "CODEX_GATEWAY_UPSTREAM_READ_TIMEOUT": "5",
        }
        env.update({f"CODEX_GATEWAY_{k.upper()}": str(v) for k, v in settings.items()})
        self.config = config_mod.load(env=env)
        self.app = create_app(self.config)
        self.client = self.app.test_client()

    def post(self, path: str, body=None, *, headers: dict | None = None, raw: bytes | None = None,
             key: str | None = CLIENT_KEY):
        hdrs = {"Content-Type": "application/json"}
        if key:
            hdrs["Authorization"] = f"Bearer {key}"
        hdrs.update(headers or {})
        if raw is None:
            import json
            raw = json.dumps(body).encode()
        return self.client.post(path, data=raw, headers=hdrs)
