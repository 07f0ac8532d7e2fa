"""Codex CLI 0.171.0 with provider command auth (which fetches ``/models``) runs a model
only the backend's own catalog lists, gated to clients of at least 0.170.0: the gateway
follows the backend, hands Codex the backend's entry (its base instructions included),
and Codex prints no catalog warning."""
from __future__ import annotations

import time

import requests

from tests.support import CLIENT_KEY, Gateway, auth_headers, gateway_env

from .clients import Home, codex_binary, run_full

ASTRA = {"slug": "gpt-6-astra", "minimal_client_version": "0.170.0",
         "base_instructions": "You are Astra. This is the backend's own base prompt."}


def config(base_url: str) -> str:
    return f'''check_for_update_on_startup = false
model = "gpt-6-astra"
model_provider = "gw"

[model_providers.gw]
name = "codex-gateway"
base_url = "{base_url}"
wire_api = "responses"

[model_providers.gw.auth]
command = "echo"
args = ["{CLIENT_KEY}"]

[analytics]
enabled = false
'''


def test_codex_cli_runs_a_model_only_the_backend_lists(upstream, fresh, tmp_path):
    upstream.configure(catalog=[{"slug": "gpt-5-codex"}, ASTRA])
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_UPSTREAM_CATALOG_REFRESH_SECONDS=3600)
    gw = Gateway(env, workers=2, name="catalog").start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline:  # every worker follows the shared copy within seconds
            health = [requests.get(gw.url + "/healthz", timeout=5).json() for _ in range(4)]
            if all(h["catalog"]["source"] == "backend" for h in health):
                break
            time.sleep(0.2)
        listed = requests.get(gw.url + "/v1/models", headers=auth_headers(), timeout=5).json()
        assert "gpt-6-astra" in [m["id"] for m in listed["data"]]

        home = Home(tmp_path / "laptop")
        home.write("~/.codex/config.toml", config(gw.url + "/v1"))
        codex = codex_binary("0.171.0")
        first = run_full('codex exec "Say hello"', codex, home, home.env())
        second = run_full('codex exec resume --last "Say it again"', codex, home, home.env())
        for proc in (first, second):
            assert "metadata" not in proc.stderr.lower(), proc.stderr[-3000:]
            assert "not found" not in proc.stderr.lower(), proc.stderr[-3000:]
        turns = [r for r in fresh.requests if r["path"].endswith("/responses")]
        assert len(turns) == 2 and all(r["status"] == 200 for r in turns)
        for turn in turns:
            assert turn["body"]["model"] == "gpt-6-astra"
            # Codex 0.171 sends its model's base instructions as the first developer
            # message (``instructions`` stays empty): the backend's own prompt, not none.
            first_item = turn["body"]["input"][0]
            base = turn["body"]["instructions"] or first_item["content"][0]["text"]
            assert base == ASTRA["base_instructions"]
    finally:
        gw.stop()
