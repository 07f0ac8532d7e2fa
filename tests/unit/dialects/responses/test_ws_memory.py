"""Per-connection memory of the WebSocket path: previous_response_id expansion, bounds."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.dialects.responses.ws_memory import ConnectionMemory
from gateway.errors import GatewayError


def msg(role: str, text: str) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


BASE = msg("developer", "base prompt")
ENV = msg("user", "<environment_context>")
PROMPT = msg("user", "Please use tool now")
CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command",
        "arguments": "{}"}
RESULT = {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "ok"}
REPLY = msg("assistant", "done")


def test_codex_tool_turn_expands_to_what_http_codex_sends():
    """The captured sequence: prewarm, turn with a delta, tool follow-up with a delta."""
    mem = ConnectionMemory()
    prewarm = {"input": [BASE]}
    assert mem.expand(prewarm) == [BASE]
    mem.remember("resp_prewarm", [BASE], [])
    turn = mem.expand({"previous_response_id": "resp_prewarm", "input": [ENV, PROMPT]})
    assert turn == [BASE, ENV, PROMPT]
    mem.remember("resp_call", turn, [CALL])
    follow_up = mem.expand({"previous_response_id": "resp_call", "input": [RESULT]})
    assert follow_up == [BASE, ENV, PROMPT, CALL, RESULT]
    mem.remember("resp_done", follow_up, [REPLY])
    # Compaction v2 on the same connection: a delta that ends in compaction_trigger.
    trigger = {"type": "compaction_trigger"}
    assert mem.expand({"previous_response_id": "resp_done", "input": [trigger]})[-3:] == \
        [RESULT, REPLY, trigger]


CASES = [
    # (frame, expected full input or error code)
    ({"input": [PROMPT]}, [PROMPT]),
    ({"input": "hi"}, "hi"),  # no previous response: as sent, validation judges it
    ({}, None),
    ({"previous_response_id": "resp_a", "input": [PROMPT]}, [BASE, REPLY, PROMPT]),
    ({"previous_response_id": "resp_a", "input": "more"}, [BASE, REPLY, msg("user", "more")]),
    ({"previous_response_id": "resp_a"}, [BASE, REPLY]),
    ({"previous_response_id": "resp_unknown", "input": []}, "previous_response_not_found"),
    ({"previous_response_id": "", "input": []}, "invalid_request"),
    ({"previous_response_id": 7, "input": []}, "invalid_request"),
    ({"previous_response_id": "resp_a", "input": {"x": 1}}, "invalid_request"),
]


@pytest.mark.parametrize("frame,expected", CASES)
def test_expand(frame, expected):
    mem = ConnectionMemory()
    mem.remember("resp_a", [BASE], [REPLY])
    if isinstance(expected, str) and expected in ("previous_response_not_found",
                                                  "invalid_request"):
        with pytest.raises(GatewayError) as info:
            mem.expand(frame)
        err = info.value
        assert err.status == 400 and err.code == expected
        assert err.param in ("previous_response_id", "input")
    else:
        assert mem.expand(frame) == expected


def test_unknown_id_is_the_error_codex_retries_on():
    with pytest.raises(GatewayError) as info:
        ConnectionMemory().expand({"previous_response_id": "resp_x" * 40, "input": []})
    body = info.value.body()["error"]
    assert body["code"] == "previous_response_not_found"
    assert body["type"] == "invalid_request_error"
    assert "not found" in body["message"] and len(body["message"]) < 250


def test_expansion_does_not_alias_the_stored_input():
    mem = ConnectionMemory()
    mem.remember("r1", [BASE], [REPLY])
    full = mem.expand({"previous_response_id": "r1", "input": [PROMPT]})
    full.append(ENV)
    assert mem.expand({"previous_response_id": "r1", "input": []}) == [BASE, REPLY]


def test_count_bound_evicts_oldest_first():
    mem = ConnectionMemory(max_entries=3)
    for i in range(5):
        mem.remember(f"r{i}", [msg("user", str(i))], [])
    assert len(mem) == 3
    assert "r0" not in mem and "r1" not in mem and "r4" in mem
    with pytest.raises(GatewayError):
        mem.expand({"previous_response_id": "r0", "input": []})


def test_byte_bound_keeps_at_least_the_newest():
    mem = ConnectionMemory(max_bytes=1000)
    mem.remember("small", [msg("user", "x")], [])
    mem.remember("huge", [msg("user", "y" * 5000)], [])
    assert "huge" in mem and "small" not in mem  # over the budget alone, yet still continuable
    assert mem.bytes > 1000 and len(mem) == 1
    mem.remember("next", [msg("user", "z")], [], size=10)
    assert list(("huge" in mem, "next" in mem)) == [False, True] and mem.bytes == 10


def test_re_remembering_an_id_replaces_it_and_clear_frees_everything():
    mem = ConnectionMemory()
    mem.remember("r", [BASE], [], size=100)
    mem.remember("r", [BASE, PROMPT], [REPLY], size=40)
    assert len(mem) == 1 and mem.bytes == 40
    assert mem.expand({"previous_response_id": "r", "input": []}) == [BASE, PROMPT, REPLY]
    mem.remember("", [BASE], [])  # an id-less response cannot be continued: not kept
    assert len(mem) == 1
    mem.clear()
    assert len(mem) == 0 and mem.bytes == 0


def test_bounds_must_allow_one_entry():
    with pytest.raises(ValueError):
        ConnectionMemory(max_entries=0)


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 500)), max_size=60),
       st.integers(1, 8), st.integers(1, 3000))
def test_bounds_hold_for_any_sequence(ops, max_entries, max_bytes):
    """Whatever is remembered: never more than the bounds (beyond the newest entry),
    the byte count is exact, and the newest id is always continuable."""
    mem = ConnectionMemory(max_entries=max_entries, max_bytes=max_bytes)
    sizes: dict[str, int] = {}
    for n, size in ops:
        rid = f"r{n}"
        mem.remember(rid, [msg("user", rid)], [], size=size)
        sizes[rid] = size
        assert rid in mem
        assert len(mem) <= max_entries
        assert len(mem) == 1 or mem.bytes <= max_bytes
        kept = [r for r in sizes if r in mem]
        assert mem.bytes == sum(sizes[r] for r in kept)
