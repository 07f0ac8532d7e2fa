"""gateway.prefix: fingerprints, the verdict of a turn, and repair (pure)."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.prefix.fingerprint import Fingerprint, classify
from gateway.prefix.repair import Memory, repair, repair_items, same_content

SYS = {"type": "message", "role": "developer",
       "content": [{"type": "input_text", "text": "Be brief."}]}
U1 = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
U2 = {"type": "message", "role": "user", "content": "list files"}
RS = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}],
      "encrypted_content": "gAAA-1"}
FC = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
      "name": "ls", "arguments": "{\"path\": \".\", \"all\": true}"}
FO = {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"}
MSG = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
       "content": [{"type": "output_text", "text": "Hello  there.\n", "annotations": []}]}
TOOLS = [{"type": "function", "name": "ls", "description": "List.",
          "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}]


def body(*items, instructions="x", tools=TOOLS):
    return {"instructions": instructions, "tools": tools, "input": list(items)}


def verdict(prev, cur):
    return classify(Fingerprint.of(cur), [Fingerprint.of(prev)])


def test_append_and_first_turn():
    assert classify(Fingerprint.of(body(SYS, U1)), []).kind == "new"
    v = verdict(body(SYS, U1), body(SYS, U1, RS, FC, FO))
    assert (v.kind, v.label) == ("append", None)


def test_ids_status_and_content_shape_are_not_seen():
    prev = body(SYS, U1, MSG)
    plain = {"role": "assistant", "content": [{"type": "output_text", "text": "Hello  there.\n"}]}
    assert verdict(prev, body({"role": "developer", "content": "Be brief."},
                              {"role": "user", "content": "hi"}, plain, U2)).kind == "append"


def test_rewrite_causes_and_positions():
    prev = body(SYS, U1, FC, FO, MSG, U2)
    edited = dict(U2, content="list all files")
    assert verdict(prev, body(SYS, U1, FC, FO, MSG, edited)).label == "content@6/6"
    assert verdict(prev, body(SYS, U1, FC, FO, U2)).label == "removed@5/6"
    assert verdict(prev, body(SYS, U1, FC, FO, U2, MSG)).label == "order@5/6"
    args = dict(FC, arguments=json.dumps({"all": True, "path": "."}))
    assert verdict(prev, body(SYS, U1, args, FO, MSG, U2)).label == "content@3/6"
    assert verdict(prev, body(SYS, U1, FC, FO, MSG, U2, instructions="y")).label == \
        "instructions@0/6"
    shuffled = [{"name": "ls", "type": "function", "parameters": TOOLS[0]["parameters"],
                 "description": "List."}]
    assert verdict(prev, body(SYS, U1, FC, FO, MSG, U2, tools=shuffled)).label == "tools@0/6"


def test_another_conversation_on_the_same_key_is_new():
    title = body({"role": "user", "content": "Generate a title"}, U1, instructions="titles")
    main = body(U1, instructions="agent")
    assert classify(Fingerprint.of(main), [Fingerprint.of(title)]).kind == "new"
    # and the main conversation is matched again when both are kept
    kept = [Fingerprint.of(main), Fingerprint.of(title)]
    assert classify(Fingerprint.of(body(U1, MSG, U2, instructions="agent")), kept).kind == "append"


def test_repair_restores_form_only_changes():
    answers = [[RS, FC], [MSG]]
    sloppy_fc = {"type": "function_call", "call_id": "call_1", "name": "ls",
                 "arguments": "{\"all\":true,\"path\":\".\"}"}
    chat_msg = {"role": "assistant", "content": "Hello there."}
    items = [SYS, U1, sloppy_fc, FO, chat_msg, U2]
    fixed, n = repair_items(items, answers)
    assert fixed == [SYS, U1, RS, FC, FO, MSG, U2]
    assert json.dumps(fixed[3]) == json.dumps(FC)  # the original's bytes, key order included
    assert n == 3  # the call, the message, and the reasoning item put back before the call


def test_reasoning_is_only_put_back_for_the_account_that_produced_it():
    chat_call = {"type": "function_call", "call_id": "call_1", "name": "ls",
                 "arguments": FC["arguments"]}
    items = [U1, chat_call, FO]
    assert repair_items(items, [[RS, FC]], ["acct-a"], "acct-a") == ([U1, RS, FC, FO], 2)
    assert repair_items(items, [[RS, FC]], ["acct-a"], "acct-b") == ([U1, FC, FO], 1)


def test_repair_never_changes_meaning():
    answers = [[RS, FC], [MSG]]
    other_args = dict(FC, arguments="{\"path\": \"/\", \"all\": true}")
    other_name = dict(FC, name="rm")
    other_text = {"role": "assistant", "content": "Hello there!"}
    extra = dict(FC, arguments="{\"path\": \".\", \"all\": 1}")  # true is not 1
    for item in (other_args, other_name, extra):
        assert not same_content(item, FC)
        fixed, n = repair_items([U1, item, FO], answers)
        assert (fixed, n) == ([U1, item, FO], 0)
    assert repair_items([U1, other_text], answers) == ([U1, other_text], 0)


def test_codex_cli_key_order_and_null_fields_are_left_alone():
    # Codex CLI sends the model's items back with its own key order and "content": null
    reordered = {"type": "message", "status": "completed", "id": "msg_1", "role": "assistant",
                 "content": MSG["content"]}
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": RS["summary"], "content": None,
                 "encrypted_content": "gAAA-1"}
    items = [U1, reasoning, reordered, U2]
    assert repair_items(items, [[RS, MSG]]) == (items, 0)


def test_tidy_items_are_left_alone():
    items = [SYS, U1, RS, FC, FO, MSG, U2]
    fixed, n = repair_items(items, [[RS, FC], [MSG]])
    assert fixed is items and n == 0


def test_tools_keep_their_first_serialisation():
    mem = Memory()
    first = body(U1)
    assert repair(first, mem) == 0
    shuffled = [{"parameters": {"properties": {"path": {"type": "string"}}, "type": "object"},
                 "description": "List.", "name": "ls", "type": "function"}]
    later = body(U1, tools=shuffled)
    assert repair(later, mem) == 1
    assert json.dumps(later["tools"]) == json.dumps(TOOLS)
    changed = [dict(shuffled[0], description="List files.")]
    other = body(U1, tools=changed)
    assert repair(other, mem) == 0 and other["tools"] == changed


_json = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(args=st.dictionaries(st.text(max_size=6), _json, max_size=5), seed=st.integers(0, 99),
       other=_json)
def test_arguments_are_restored_exactly_when_they_are_the_same_value(args, seed, other):
    import random
    orig = dict(FC, arguments=json.dumps(args))
    keys = list(args)
    random.Random(seed).shuffle(keys)
    resent = {"type": "function_call", "call_id": "call_1", "name": "ls",
              "arguments": json.dumps({k: args[k] for k in keys}, separators=(",", ":"))}
    fixed, n = repair_items([U1, resent], [[orig]])
    assert fixed[1] == orig and json.dumps(fixed[1]) == json.dumps(orig)
    changed = dict(args, **{"k": other}) if args.get("k", object()) != other else None
    if changed is not None and \
            json.dumps(changed, sort_keys=True) != json.dumps(args, sort_keys=True):
        edited = dict(resent, arguments=json.dumps(changed))
        assert repair_items([U1, edited], [[orig]]) == ([U1, edited], 0)


def test_a_reasoning_item_sent_by_id_alone_is_neither_duplicated_nor_changed():
    by_id = {"type": "reasoning", "id": "rs_1", "summary": []}  # a stored-response client
    items = [U1, by_id, FC, FO]
    assert repair_items(items, [[RS, FC]]) == (items, 0)
