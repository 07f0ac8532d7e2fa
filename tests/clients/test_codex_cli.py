"""Codex CLI 0.169.0 and 0.171.0 (pinned, npm) → the gateway, directly and through nginx
→ the fake Codex upstream, with the provider configuration of the deploy guide (docs/deploy/vps.md)
(HTTP), the same provider with ``supports_websockets = true``, and the built-in provider
pointed at the gateway (``openai_base_url`` + ``CODEX_API_KEY``: WebSocket by default)."""
from __future__ import annotations

import json

import pytest

from tests.support import CLIENT_KEY, Gateway, gateway_env

from .clients import (CODEX_TURNS, CODEX_VERSIONS, HELLO, Home, codex_binary, envelope,
                      guide_file, run, run_full)

# Test-only settings on top of the guide's file (see clients.py).
QUIET = 'check_for_update_on_startup = false\n'
NO_ANALYTICS = '\n[analytics]\nenabled = false\n'
VERSIONS = list(CODEX_VERSIONS)
TOOL_TURN = 'codex exec "[[call:exec_command {\\"cmd\\": \\"echo gateway-tool-output\\"}]]"'


def codex_home(tmp_path, mode: str, base_url: str) -> tuple[Home, dict]:
    """A laptop with Codex configured for *mode*: ``http`` (the guide's provider as
    written), ``websocket`` (the same provider with ``supports_websockets = true``) or
    ``builtin`` (no provider of its own: the built-in one, pointed at the gateway)."""
    home = Home(tmp_path)
    if mode == "builtin":
        config = f'model = "gpt-5-codex"\nopenai_base_url = "{base_url}"\n'
        env = home.env(CODEX_API_KEY=CLIENT_KEY)
    else:
        config = guide_file("~/.codex/config.toml", base_url)
        assert config.rstrip().endswith('wire_api = "responses"')  # the provider table is last
        if mode == "websocket":
            config = config.rstrip("\n") + "\nsupports_websockets = true\n"
        env = home.env()
    home.write("~/.codex/config.toml", QUIET + config + NO_ANALYTICS)
    return home, env


def session(codex, home, env, turns=CODEX_TURNS) -> list:
    """Run the turns; each must exit 0, answer, and never retry or fall back."""
    out = []
    for turn in turns:
        proc = run_full(turn, codex, home, env)
        assert "Reconnecting" not in proc.stderr, proc.stderr[-3000:]
        assert "Falling back" not in proc.stderr, proc.stderr[-3000:]
        out.append(proc.stdout)
    return out


def shape(record: dict) -> list:
    """An upstream input as (type, role, text head) per item: what the model was sent."""
    out = []
    for item in record["body"]["input"]:
        text = json.dumps(item.get("content") or item.get("output") or item.get("arguments"))
        out.append((item.get("type"), item.get("role"), text[:60]))
    return out


_baselines: dict = {}


def http_baseline(version, stack, upstream, tmp_path_factory) -> dict:
    """The same two turns over HTTP with the guide's provider, once per version: what a
    direct HTTP client sends, and the cache it gets on turn 2."""
    if version not in _baselines:
        home, env = codex_home(tmp_path_factory.mktemp("http-" + version), "http",
                               stack.url + "/v1")
        start = len(upstream.requests)
        session(codex_binary(version), home, env)
        one, two = upstream.requests[start:]
        _baselines[version] = {"shapes": (shape(one), shape(two)),
                               "cached": two["cached_tokens"]}
    return _baselines[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_codex_exec_then_resume_keeps_one_envelope_and_hits_the_cache(
        stack, fresh, tmp_path, version):
    """The guide's configuration as written (HTTP)."""
    codex = codex_binary(version)
    home, env = codex_home(tmp_path, "http", stack.url + "/v1")
    assert CODEX_TURNS == ['codex exec "Say hello"', 'codex exec resume --last "Say it again"']

    first = run(CODEX_TURNS[0], codex, home, env)
    second = run(CODEX_TURNS[1], codex, home, env)
    assert HELLO in first and HELLO in second

    records = fresh.requests
    assert [r["path"] for r in records] == ["/backend-api/codex/responses"] * 2, records
    assert all(r["status"] == 200 for r in records)
    one, two = (envelope(r) for r in records)
    assert one == two and None not in one, (one, two)
    account, key, session_underscore, session_hyphen = one
    assert session_underscore == session_hyphen == key
    # Turn 2 is the resumed conversation (turn 1 in its input) and hits the cache.
    assert "Say hello" in str(records[1]["body"]["input"])
    assert records[0]["cached_tokens"] == 0 and records[1]["cached_tokens"] > 0
    # It went through nginx (its access log) with Codex's own headers.
    access = (stack.nginx.prefix / "access.log").read_text()
    assert access.count('"POST /v1/responses HTTP/1.1" 200') >= 2
    agent = records[0]["headers"].get("User-Agent", "")
    assert f"/{version}" in agent, agent
    # 0.171 asks for zstd/gzip; the gateway never forwards that upstream.
    assert "zstd" not in records[0]["headers"].get("Accept-Encoding", "")
    assert "continuity=prompt_cache_key" in stack.gateway.logs()


@pytest.mark.parametrize("mode", ["websocket", "builtin"])
@pytest.mark.parametrize("route", ["gateway", "nginx"])
@pytest.mark.parametrize("version", VERSIONS)
def test_codex_over_websocket_exec_then_resume(stack, fresh, tmp_path, tmp_path_factory,
                                               version, route, mode):
    baseline = http_baseline(version, stack, fresh, tmp_path_factory)
    fresh.reset()
    base_url = (stack.gateway.url if route == "gateway" else stack.url) + "/v1"
    home, env = codex_home(tmp_path, mode, base_url)
    logs_before = len(stack.gateway.logs())

    first, second = session(codex_binary(version), home, env)
    assert HELLO in first and HELLO in second

    # Both turns came over WebSockets (one per process), and the prewarms cost nothing.
    ws_lines = [line for line in stack.gateway.logs()[logs_before:].splitlines()
                if "websocket endpoint=responses" in line]
    assert len(ws_lines) == 2, ws_lines
    # Each: the prewarm, then the turn as a previous_response_id delta the gateway expanded.
    assert all("prewarms=1 expanded=1 errors=0" in line for line in ws_lines), ws_lines
    records = fresh.requests
    assert len(records) == 2 and all(r["status"] == 200 for r in records), records
    if route == "nginx":
        access = (stack.nginx.prefix / "access.log").read_text()
        assert '"GET /v1/responses HTTP/1.1" 101' in access
    # One envelope across the session.
    one, two = (envelope(r) for r in records)
    assert one == two and None not in one, (one, two)
    assert one[1] == one[2] == one[3]
    # Full inputs upstream: what the same turns send over HTTP, item for item.
    assert (shape(records[0]), shape(records[1])) == baseline["shapes"]
    for rec in records:
        assert "previous_response_id" not in rec["body"] and "generate" not in rec["body"]
        assert rec["body"]["input"][0]["role"] == "developer"
    # The turn-specific headers of HTTP, restored from each frame's client_metadata.
    meta = [json.loads(r["headers"]["x-codex-turn-metadata"]) for r in records]
    assert [m["request_kind"] for m in meta] == ["turn", "turn"]
    assert records[0]["cached_tokens"] == 0
    assert records[1]["cached_tokens"] >= baseline["cached"] > 0


@pytest.mark.parametrize("mode", ["websocket", "builtin"])
@pytest.mark.parametrize("version", VERSIONS)
def test_codex_over_websocket_tool_turn(stack, fresh, tmp_path, version, mode):
    """A turn with a tool call: the follow-up is a delta on the same socket
    (previous_response_id + the function_call_output) and reaches the upstream whole."""
    home, env = codex_home(tmp_path, mode, stack.url + "/v1")
    logs_before = len(stack.gateway.logs())
    [out] = session(codex_binary(version), home, env, [TOOL_TURN])
    [line] = [line for line in stack.gateway.logs()[logs_before:].splitlines()
              if "websocket endpoint=responses" in line]
    # Prewarm, the turn and the tool follow-up on one socket, both as expanded deltas.
    assert "frames=3 responses=2 prewarms=1 expanded=2 errors=0" in line, line
    assert "Tool result was:" in out and "gateway-tool-output" in out, out
    call, follow_up = fresh.requests
    assert envelope(call) == envelope(follow_up)
    call_item = [i for i in follow_up["body"]["input"] if i.get("type") == "function_call"]
    assert call_item and call_item[0]["name"] == "exec_command"
    result = follow_up["body"]["input"][-1]
    assert result["type"] == "function_call_output"
    assert result["call_id"] == call_item[0]["call_id"]
    assert follow_up["body"]["input"][:len(call["body"]["input"])] == call["body"]["input"]
    # The upstream's sticky turn state came back on the follow-up, as over HTTP.
    assert follow_up["headers"].get("x-codex-turn-state") == f"ts-{call['id']}"
    assert follow_up["cached_tokens"] > 0


@pytest.mark.parametrize("mode", ["builtin", "named-openai"])
@pytest.mark.parametrize("version", VERSIONS)
def test_codex_remote_compaction_passes_through(stack, fresh, tmp_path, version, mode):
    """Remote compaction v2 (the built-in provider over WebSocket, a provider named
    "OpenAI" over HTTP): the input ending in compaction_trigger reaches the upstream
    untouched, its one compaction item reaches Codex, and the next request carries it."""
    if mode == "builtin":
        home, env = codex_home(tmp_path, "builtin", stack.url + "/v1")
    else:
        home, env = codex_home(tmp_path, "http", stack.url + "/v1")
        config = (home.home / ".codex/config.toml").read_text()
        assert config.count('name = "codex-gateway"') == 1
        (home.home / ".codex/config.toml").write_text(
            config.replace('name = "codex-gateway"', 'name = "OpenAI"'))
    # Compact as soon as the context passes 200 tokens (the fake counts ~10k per turn).
    config = (home.home / ".codex/config.toml").read_text()
    (home.home / ".codex/config.toml").write_text("model_auto_compact_token_limit = 200\n" + config)
    logs_before = len(stack.gateway.logs())
    first, second = session(codex_binary(version), home, env)
    ws_lines = [line for line in stack.gateway.logs()[logs_before:].splitlines()
                if "websocket endpoint=responses" in line]
    if mode == "builtin":  # turn 2's socket: prewarm, the compaction as a delta, the turn
        assert len(ws_lines) == 2 and "frames=3 responses=2 prewarms=1 expanded=1 errors=0" \
            in ws_lines[1], ws_lines
    else:
        assert ws_lines == []
    assert HELLO in first and HELLO in second
    records = fresh.requests
    assert all(r["status"] == 200 for r in records), records
    triggers = [r for r in records if r["body"]["input"][-1] == {"type": "compaction_trigger"}]
    assert triggers, [shape(r)[-1] for r in records]
    trigger = triggers[0]
    item = {"id": f"cmp_fake{trigger['id']:04d}", "type": "compaction",
            "encrypted_content": f"fake-compaction-{trigger['id']:04d}-of-"
                                 f"{len(trigger['body']['input']) - 1}-items"}
    later = [r for r in records if r["id"] > trigger["id"]]
    assert later and item in later[0]["body"]["input"], shape(later[0])
    assert len({envelope(r) for r in records}) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_codex_over_websocket_to_a_websocket_backend_sends_only_new_items(fresh, tmp_path,
                                                                          version):
    """The real Codex CLI on a client WebSocket, the backend reached over its own: the
    prewarm warms the backend, the turn and the tool follow-up go up as
    previous_response_id plus their new items only, and the answer is right."""
    fresh.configure(websocket="accept")
    try:
        with Gateway(gateway_env(fresh, tmp_path), workers=2, name="clients-upws") as gw:
            home, env = codex_home(tmp_path, "builtin", gw.url + "/v1")
            [out] = session(codex_binary(version), home, env, [TOOL_TURN])
            logs = gw.logs()
    finally:
        fresh.configure(websocket=426)
    assert "Tool result was:" in out and "gateway-tool-output" in out, out
    prewarm, call, follow_up = fresh.requests
    assert [r["transport"] for r in (prewarm, call, follow_up)] == ["websocket"] * 3
    assert prewarm["prewarm"] and prewarm["wire"]["generate"] is False
    assert call["wire"]["previous_response_id"] == f"resp_fake{prewarm['id']:04d}"
    assert follow_up["wire"]["previous_response_id"] == f"resp_fake{call['id']:04d}"
    assert follow_up["wire"]["input_items"] == 1  # only the function_call_output
    assert call["wire"]["input_items"] < len(call["body"]["input"])
    assert envelope(call) == envelope(follow_up)
    assert follow_up["cached_tokens"] > 0
    assert len(fresh.handshakes) == 1 and "upstream=websocket" in logs
