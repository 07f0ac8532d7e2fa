"""The Codex profile: what it normalises and drops, system as developer, the headers it sends."""
from __future__ import annotations

from gateway.upstream.codex import bind_turn_state

from gateway import config as config_mod
from gateway.continuity import Continuity
from gateway.upstream import profiles_for
from gateway.accounts.pool import Credentials

CFG = config_mod.load(env={})
PROFILES = profiles_for(CFG)
CONT = Continuity("K", "conversation")


def test_codex_profile_normalises_and_drops():
    prof = PROFILES["codex"]
    body = {"model": "m", "input": [], "stream": False, "store": True, "include": ["x"],
            "prompt_cache_retention": "24h", "temperature": 0.2, "prompt_cache_key": "client"}
    out, dropped = prof.prepare(body, CONT)
    assert out["stream"] is True and out["store"] is False and out["instructions"] == ""
    assert out["include"] == ["x", "reasoning.encrypted_content"]
    assert out["prompt_cache_key"] == "K"
    assert set(dropped) == {"prompt_cache_retention", "temperature"}
    assert "prompt_cache_retention" not in out and body["stream"] is False  # input untouched


def test_codex_profile_sends_system_as_developer_and_never_a_previous_response_id():
    system = {"type": "message", "role": "system", "content": "be brief"}
    body = {"model": "m", "input": [system], "previous_response_id": "r"}
    out, _ = PROFILES["codex"].prepare(body, CONT)
    assert "previous_response_id" not in out  # the dialect expanded it from the store
    assert out["input"] == [{**system, "role": "developer"}] and system["role"] == "system"


def test_codex_headers_one_value_and_forwarding():
    client = {"session_id": "client-sid", "x-codex-turn-state": bind_turn_state("ts", "acct"),
              "version": "0.169.0",
              "x-client-request-id": "r", "Authorization": "Bearer client-key", "cookie": "c"}
    h = PROFILES["codex"].headers(Credentials("tok", "acct"), client, CONT)
    assert h["session_id"] == h["session-id"] == "K"
    assert h["Authorization"] == "Bearer tok" and h["chatgpt-account-id"] == "acct"
    assert h["x-codex-turn-state"] == "ts" and h["version"] == "0.171.0"
    assert "cookie" not in h and h["originator"] == "codex_cli_rs"
    # Another account's turn state is not forwarded.
    other = {**client, "x-codex-turn-state": bind_turn_state("ts", "other")}
    assert "x-codex-turn-state" not in PROFILES["codex"].headers(Credentials("tok", "acct"),
                                                                 other, CONT)
