"""The continuity resolver: precedence, determinism, scoping, apply()."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import config as config_mod
from gateway import continuity
from gateway.continuity import Continuity

CFG = config_mod.load(env={}).continuity
SEED = config_mod.load(env={"CODEX_GATEWAY_CONTINUITY_PRESET": "seed"}).continuity
CAPTURES = Path(__file__).resolve().parent.parent / "fixtures"


def body(first_user="hello", system="be brief", key=None, model="gpt-5-codex", extra=()):
    items = [{"type": "message", "role": "developer",
              "content": [{"type": "input_text", "text": system}]},
             {"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": first_user}]}]
    items += list(extra)
    b = {"model": model, "input": items}
    if key is not None:
        b["prompt_cache_key"] = key
    return b


# Each row: the signals present, and the source that must win.
PRECEDENCE = [
    (dict(key="k1", headers={"session-id": "s"}, principal="p"), "prompt_cache_key"),
    (dict(key="  ", headers={"session-id": "s"}, principal="p"), "client_session"),
    (dict(key=None, headers={"x-session-id": "s"}, principal="p"), "client_session"),
    (dict(key=None, headers={"session-id": " "}, principal="p"), "conversation"),
    (dict(key=None, headers={}, principal="p", no_user=True), "client_principal"),
    (dict(key=None, headers={}, principal=None, no_user=True), "account"),
]


@pytest.mark.parametrize("signals,expected", PRECEDENCE)
def test_each_step_beats_the_ones_below(signals, expected):
    b = body(key=signals["key"])
    if signals.get("no_user"):
        b["input"] = b["input"][:1]
    got = continuity.resolve(b, signals["headers"], signals["principal"], CFG)
    assert got.source == expected
    assert (got.key is None) == (expected == "account")


def test_session_header_order_is_the_specs():
    headers = {"thread-id": "t", "conversation_id": "c", "x-session-id": "x", "session-id": "s"}
    a = continuity.resolve(body(), headers, None, CFG)
    b = continuity.resolve(body(), {"session-id": "s"}, None, CFG)
    assert a == b


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=50))
def test_deterministic_and_scoped(value, principal):
    b = body(first_user=value)
    first = continuity.resolve(b, {"x-session-id": value}, principal, CFG)
    again = continuity.resolve(json.loads(json.dumps(b)), {"x-session-id": value}, principal, CFG)
    assert first == again
    if value.strip():
        other = continuity.resolve(b, {"x-session-id": value}, principal + "-other", CFG)
        assert other.key != first.key  # same header, different client: different key


@given(st.lists(st.text(min_size=1, max_size=40).filter(str.strip), min_size=2, max_size=6,
                unique_by=str.strip))
def test_different_conversations_get_different_keys(first_messages):
    keys = {continuity.resolve(body(first_user=m), {}, "p", CFG).key for m in first_messages}
    assert len(keys) == len(first_messages)


def test_conversation_key_is_stable_as_the_history_grows():
    turn1 = body()
    turn2 = body(extra=[{"type": "message", "role": "assistant",
                         "content": [{"type": "output_text", "text": "hi"}]},
                        {"type": "message", "role": "user",
                         "content": [{"type": "input_text", "text": "more"}]}])
    a = continuity.resolve(turn1, {}, "p", CFG)
    b = continuity.resolve(turn2, {}, "p", CFG)
    assert a.source == "conversation" and a == b


def test_instructions_and_developer_message_fingerprint_alike():
    """Chat sends system text as a developer message, Responses clients as instructions."""
    as_message = body(system="S")
    as_instructions = {"model": "gpt-5-codex", "instructions": "S",
                       "input": as_message["input"][1:]}
    assert (continuity.resolve(as_message, {}, None, CFG)
            == continuity.resolve(as_instructions, {}, None, CFG))


def test_fresh_idempotency_key_does_not_change_default_but_does_in_seed():
    b = body()
    default = {continuity.resolve(b, {"idempotency-key": f"idem-{i}"}, "p", CFG).key
               for i in range(5)}
    assert len(default) == 1
    b_nouser = body()
    b_nouser["input"] = []
    seed = {continuity.resolve(b_nouser, {"idempotency-key": f"idem-{i}"}, "p", SEED)
            for i in range(5)}
    assert {c.source for c in seed} == {"idempotency_key"}
    assert len({c.key for c in seed}) == 5


def test_explicit_key_scoping_setting():
    scoped = continuity.resolve(body(key="abc"), {}, "p", CFG)
    assert scoped.key != "abc"
    raw_cfg = config_mod.load(env={"CODEX_GATEWAY_CONTINUITY_SCOPE_EXPLICIT_KEY": "false"})
    raw = continuity.resolve(body(key=" abc "), {}, "p", raw_cfg.continuity)
    assert raw == Continuity("abc", "prompt_cache_key")
    long = continuity.resolve(body(key="x" * 300), {}, "p", raw_cfg.continuity)
    assert len(long.key) == 36  # bounded: long explicit keys are hashed


def test_key_is_the_same_in_a_fresh_process():
    b = body(first_user="fresh process")
    here = continuity.resolve(b, {}, "key-abc", CFG).key
    code = ("import json,sys; from gateway import config, continuity;"
            "b=json.loads(sys.argv[1]);"
            "print(continuity.resolve(b, {}, 'key-abc', config.load(env={}).continuity).key)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(b)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == here


def test_account_source_binds_after_choice():
    c = Continuity(None, "account")
    a = continuity.bind_account(c, "acct-1", None, CFG)
    assert a.source == "account" and a.key == continuity.bind_account(c, "acct-1", None, CFG).key
    assert a.key != continuity.bind_account(c, "acct-2", None, CFG).key


def test_apply_writes_one_value_and_overrides_client_headers():
    b, h = {"prompt_cache_key": "client"}, {"Session_Id": "client", "x-other": "1"}
    continuity.apply(b, h, Continuity("K", "conversation"), ("session_id", "session-id"))
    assert b["prompt_cache_key"] == "K"
    assert h == {"x-other": "1", "session_id": "K", "session-id": "K"}


def _capture(name):
    return json.loads((CAPTURES / name).read_text())


def test_codex_capture_turns_share_one_envelope():
    turns = _capture("codex-two-turns.json")
    got = [continuity.resolve(t["body"], _ci(t["headers"]), "key-1", CFG) for t in turns]
    assert {c.source for c in got} == {"prompt_cache_key"}
    assert len({c.key for c in got}) == 1


def test_opencode_capture_requests_share_one_envelope():
    from gateway.dialects.chat.request import translate_request
    turns = _capture("opencode-two-turns.json")
    got = [continuity.resolve(translate_request(t["body"]).responses, _ci(t["headers"]),
                              "key-1", CFG) for t in turns]
    assert {c.source for c in got} == {"client_session"}
    assert len({c.key for c in got}) == 1


def _ci(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


@pytest.mark.parametrize("source", config_mod.CONTINUITY_SOURCES)
def test_every_source_the_config_accepts_is_one_the_resolver_reads(source):
    cfg = config_mod.load(env={"CODEX_GATEWAY_CONTINUITY_SOURCES": source}).continuity
    headers = {"session-id": "s", "idempotency-key": "i"}
    assert continuity.resolve(body(key="k"), headers, "p", cfg).source == source


@pytest.mark.parametrize("value", ["", "abc", "é中🙂", "x" * 600, "a:b:c"])
def test_derive_is_uuid5_of_the_namespace(value):
    """The derived key is exactly ``uuid5(namespace, "source:scope:value")``."""
    import uuid

    ns = config_mod.ContinuityConfig().namespace
    got = continuity._derive(continuity._namespace(ns), "conversation", "key-1", value)
    assert got == str(uuid.uuid5(uuid.UUID(ns), f"conversation:key-1:{value}"))
