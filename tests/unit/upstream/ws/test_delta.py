"""What a turn on a conversation's socket uploads (``split``/``delta``), pure."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.upstream.ws.delta import delta, hold, split


def user(text):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def backend_message(text, n=1):
    """An assistant message as the backend outputs it."""
    return {"id": f"msg_{n}", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def chat_message(text):
    """The same message as the Chat Completions dialect renders a client's history."""
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                                 "text": text}]}


REASONING = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}],
             "encrypted_content": "gAAA-enc-1"}
CALL = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
        "name": "shell", "arguments": '{"cmd":"ls"}'}
CALL_OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"}
SYSTEM = {"type": "message", "role": "developer", "content": [{"type": "input_text",
                                                               "text": "be brief"}]}
SENT = [SYSTEM, user("one")]

# (case, sent, output, new input, expected new items or None)
CASES = [
    ("exact extension: only the new items", SENT, [backend_message("hi")],
     SENT + [backend_message("hi"), user("two")], [user("two")]),
    ("after a prewarm (no output): everything after its input", [SYSTEM], [],
     SENT, [user("one")]),
    ("a tool follow-up", SENT, [CALL], SENT + [CALL, CALL_OUTPUT], [CALL_OUTPUT]),
    ("several new items", SENT, [CALL], SENT + [CALL, CALL_OUTPUT, user("and")],
     [CALL_OUTPUT, user("and")]),
    ("nothing new: sent in full", SENT, [backend_message("hi")],
     SENT + [backend_message("hi")], None),
    ("shorter than what the socket holds", SENT, [], [SYSTEM], None),
    ("history edited", SENT, [backend_message("hi")],
     [SYSTEM, user("ONE"), backend_message("hi"), user("two")], None),
    ("history compacted", SENT, [backend_message("hi")],
     [SYSTEM, {"type": "compaction", "encrypted_content": "x"}, user("two")], None),
    ("the answer re-rendered by a Chat client still continues it", SENT,
     [backend_message("hi")], SENT + [chat_message("hi"), user("two")], [user("two")]),
    ("item ids and status do not matter", SENT, [CALL],
     SENT + [{k: v for k, v in CALL.items() if k not in ("id", "status")}, CALL_OUTPUT],
     [CALL_OUTPUT]),
    ("an answer the client changed is sent in full", SENT, [backend_message("hi")],
     SENT + [chat_message("hi!"), user("two")], None),
    ("tool arguments re-serialised differently: sent in full", SENT, [CALL],
     SENT + [dict(CALL, arguments='{"cmd": "ls"}'), CALL_OUTPUT], None),
    ("reasoning the client could not send back may be missing", SENT,
     [REASONING, backend_message("hi")], SENT + [chat_message("hi"), user("two")],
     [user("two")]),
    ("reasoning sent back (Codex, Claude's signatures) is matched", SENT,
     [REASONING, backend_message("hi")],
     SENT + [{"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAA-enc-1",
              "summary": []}, backend_message("hi"), user("two")], [user("two")]),
    ("other reasoning in its place: sent in full", SENT, [REASONING, backend_message("hi")],
     SENT + [dict(REASONING, encrypted_content="other"), backend_message("hi"), user("two")],
     None),
    ("a missing answer item: sent in full", SENT, [CALL, backend_message("hi")],
     SENT + [backend_message("hi"), user("two")], None),
    ("string content equals one text part", [{"role": "user", "content": "one"}], [],
     [user("one"), user("two")], [user("two")]),
    ("roles still differ", [user("one")], [], [dict(user("one"), role="developer"),
                                               user("two")], None),
]


@pytest.mark.parametrize("case,sent,output,new,expected", CASES, ids=[c[0] for c in CASES])
def test_delta(case, sent, output, new, expected):
    assert delta(sent, output, new) == expected
    # What the socket stores is digests: the same answer from them.
    assert delta([hold(i) for i in sent], [hold(i) for i in output], new) == expected


def test_split_gives_where_the_new_items_begin():
    assert split(SENT, [CALL], SENT + [CALL, CALL_OUTPUT]) == 3
    assert split(SENT, [REASONING, CALL], SENT + [CALL, CALL_OUTPUT]) == 3
    assert split(SENT, [CALL], SENT) is None


def test_digests_ignore_key_order_and_keep_text():
    a = {"type": "message", "role": "user", "content": [{"text": "x", "type": "input_text"}]}
    b = {"content": [{"type": "input_text", "text": "x"}], "role": "user", "type": "message"}
    assert hold(a) == hold(b)
    assert hold(a) != hold(user("y"))
    assert hold(REASONING).reasoning and not hold(a).reasoning


ITEM = st.builds(lambda role, text: {"type": "message", "role": role,
                                     "content": [{"type": "input_text", "text": text}]},
                 st.sampled_from(["user", "assistant", "developer"]), st.text(max_size=8))
ITEMS = st.lists(ITEM, max_size=6)


@settings(max_examples=200, deadline=None)
@given(ITEMS, ITEMS, st.lists(ITEM, min_size=1, max_size=4))
def test_an_extension_always_gives_exactly_the_new_items(sent, output, new):
    assert delta(sent, output, sent + output + new) == new


@settings(max_examples=200, deadline=None)
@given(ITEMS, ITEMS, ITEMS)
def test_a_delta_always_rebuilds_the_full_input(sent, output, new_input):
    """Whatever the input, what the backend will see (its held input + output +
    the delta) is the client's full input, item for item as the model sees it."""
    got = delta(sent, output, new_input)
    if got is not None:
        rebuilt = sent + output + got
        assert [hold(i) for i in rebuilt] == [hold(i) for i in new_input]



# The delta rule and the backend must agree on what the model sees: two items the
# rule holds equal must be the same to the backend (the fake renders an item as
# the model sees it), or a delta would change the prompt and its cache.
def _variants(text, flags):
    """An assistant message with *text*, in one of the shapes clients send it back."""
    with_id, with_status, annotated, output_part, as_string = flags
    part = {"type": "output_text" if output_part else "input_text", "text": text}
    if annotated:
        part["annotations"] = []
    item = {"type": "message", "role": "assistant",
            "content": text if as_string else [part]}
    if with_id:
        item["id"] = "msg_x"
    if with_status:
        item["status"] = "completed"
    return item


VARIANT = st.builds(_variants, st.sampled_from(["hi", "hi!", ""]),
                    st.tuples(*[st.booleans()] * 5))
CALL_VARIANT = st.builds(lambda name, args, extra: {**({"id": "fc_9", "status": "completed"}
                                                       if extra else {}),
                                                    "type": "function_call", "call_id": "c1",
                                                    "name": name, "arguments": args},
                         st.sampled_from(["shell", "read"]),
                         st.sampled_from(['{"cmd":"ls"}', '{"cmd": "ls"}']), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(VARIANT, VARIANT), st.tuples(CALL_VARIANT, CALL_VARIANT)))
def test_items_the_delta_rule_holds_equal_are_the_same_to_the_model(pair):
    from tests.fakes.codex_answers import render_item
    a, b = pair
    if hold(a) == hold(b):
        assert render_item(a) == render_item(b)


@pytest.mark.parametrize("case,sent,output,new,expected", CASES, ids=[c[0] for c in CASES])
def test_a_delta_never_changes_what_the_model_sees(case, sent, output, new, expected):
    """The backend's context after a delta (what it holds + the new items) renders
    as the client's full input would over HTTP; only reasoning the client could
    not send back may be extra (the backend kept it)."""
    from tests.fakes.codex_answers import render_item
    got = delta(sent, output, new)
    if got is None:
        return
    rebuilt = [i for i in sent + output + got
               if i.get("type") != "reasoning" or any(hold(i) == hold(n) for n in new)]
    assert [render_item(i) for i in rebuilt] == [render_item(i) for i in new]
