"""The Vercel AI SDK (``ai`` 7 with ``@ai-sdk/openai``, and ``@ai-sdk/open-responses``, pinned
in package.json): three turns, a tool call in the middle, each result's messages fed back
(``ai_sdk_turns.mjs``), through a real gunicorn.

With ``@ai-sdk/openai`` and ``store`` left at OpenAI's default, the SDK sends earlier
output items back as ``item_reference``: the upstream must get the exact items instead
(reasoning with its ``encrypted_content``), never a reference or a previous_response_id,
with one envelope and cached tokens from turn 2 on."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import CLIENT_KEY, LONG_SYSTEM

from .clients import HERE


def run_turns(gateway, mode: str) -> dict:
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "GATEWAY_URL": gateway.url + "/v1",
           "GATEWAY_KEY": CLIENT_KEY, "SYSTEM": LONG_SYSTEM, "MODE": mode}
    done = subprocess.run(["node", str(HERE / "ai_sdk_turns.mjs")], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def references(body: dict) -> list[str]:
    return [i["id"] for i in body.get("input", []) if i.get("type") == "item_reference"]


@pytest.mark.parametrize("mode", ["openai", "reasoning", "open-responses"])
def test_ai_sdk_three_turns_with_a_tool_call(gateway, fresh, mode):
    out = run_turns(gateway, mode)
    assert out["texts"] == ["Hello, ready.", "Tool result was: 18C and sunny in Paris",
                            "Goodbye."]
    assert out["calls"] == ["Paris"]
    upstream = [r for r in fresh.requests if r["status"] == 200]
    assert len(upstream) == len(out["sent"]) == 4  # the tool round trip is two requests
    assert all("previous_response_id" not in r["body"] for r in upstream)
    assert not any(i.get("type") == "item_reference" for r in upstream for i in r["body"]["input"])
    refs = [ref for body in out["sent"] for ref in references(body)]
    if mode == "reasoning":  # every reasoning item and the message after it, as references
        assert any(ref.startswith("rs_") for ref in refs) and \
            any(ref.startswith("msg_") for ref in refs), refs
    elif mode == "open-responses":
        assert refs == []  # stateless: it replays every item itself
    for body, r in zip(out["sent"], upstream):  # each reference became its exact item
        resolved = [i for i in r["body"]["input"] if i.get("id") in set(references(body))]
        assert {i["id"] for i in resolved} == set(references(body))
        for item in resolved:
            if item["type"] == "reasoning":
                assert item["encrypted_content"].startswith("gAAAAfake-encrypted-")
    envelopes = {(r["account"], r["body"]["prompt_cache_key"], r["headers"]["session_id"])
                 for r in upstream}
    assert len(envelopes) == 1, envelopes
    assert all(r["cached_tokens"] >= 1024 for r in upstream[1:]), \
        [r["cached_tokens"] for r in upstream]
