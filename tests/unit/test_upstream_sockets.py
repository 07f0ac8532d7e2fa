"""The upstream socket pool's pure parts: what a turn uploads (``split``/``delta``),
the pool's bounds and idle expiry, the shared fallback marks, SSE framing."""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.upstream import sockets
from gateway.upstream.sockets import (Conversation, FallbackMarks, SocketPool, delta, hold,
                                      split, sse_frame)


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

# -- the pool ----------------------------------------------------------------------------

class FakeSocket:
    def __init__(self, clock, alive=True, pong=True):
        self.closed = False
        self.close_code = None
        self.aborted = False
        self._alive, self._pong = alive, pong
        self.pings = 0
        self.last_used = self.last_heard = clock()

    def alive(self):
        return self._alive and not self.closed

    def probe(self, timeout):
        return self._pong

    def ping(self):
        self.pings += 1

    def close(self, code=1000):
        self.closed, self.close_code = True, code

    def abort(self):
        self.closed = self.aborted = True


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def conv(clock, key, **kw):
    return Conversation(FakeSocket(clock, **kw), key)


def test_a_socket_is_reused_by_its_key_only(clock):
    pool = SocketPool(4, 300, clock=clock)
    a = conv(clock, ("acct", "k1"))
    pool.checkin(a)
    assert pool.checkout(("acct", "k2")) is None
    assert pool.checkout(("other", "k1")) is None
    assert pool.checkout(("acct", "k1")) is a
    assert pool.checkout(("acct", "k1")) is None  # checked out: one request at a time
    pool.close_all()


def test_the_pool_keeps_at_most_max_sockets_least_recently_used_out_first(clock):
    pool = SocketPool(2, 300, clock=clock)
    convs = [conv(clock, ("acct", f"k{i}")) for i in range(3)]
    for i, c in enumerate(convs):
        clock.now += 1
        pool.checkin(c)
    assert len(pool) == 2
    assert convs[0].socket.closed and not convs[1].socket.closed
    assert pool.checkout(("acct", "k0")) is None
    assert pool.checkout(("acct", "k2")) is convs[2]
    pool.close_all()
    assert convs[1].socket.closed


def test_idle_sockets_expire(clock):
    pool = SocketPool(8, 300, clock=clock)
    old, new = conv(clock, ("a", "old")), conv(clock, ("a", "new"))
    pool.checkin(old)
    clock.now += 200
    pool.checkin(new)
    clock.now += 101  # old: idle 301 s, new: 101 s
    assert pool.sweep() == 1
    assert old.socket.closed and old.socket.close_code == 1001
    new.socket.last_heard = clock.now  # it answered the reaper's pings
    assert pool.checkout(("a", "new")) is new
    assert pool.checkout(("a", "old")) is None


def test_the_newest_socket_of_a_key_wins(clock):
    pool = SocketPool(8, 300, clock=clock)
    first, second = conv(clock, ("a", "k")), conv(clock, ("a", "k"))
    pool.checkin(first)
    pool.checkin(second)  # two requests of one conversation ran at once
    assert first.socket.closed and len(pool) == 1
    assert pool.checkout(("a", "k")) is second


def test_dead_and_silent_sockets_are_not_reused(clock):
    pool = SocketPool(8, 300, clock=clock)
    dead = conv(clock, ("a", "dead"), alive=False)
    silent = conv(clock, ("a", "silent"), pong=False)
    answering = conv(clock, ("a", "answering"))
    closed = conv(clock, ("a", "closed"))
    closed.socket.closed = True
    for c in (dead, silent, answering, closed):
        pool.checkin(c)
    assert len(pool) == 3  # a closed socket is never kept
    clock.now += sockets.PROBE_AFTER + 1  # silent for long: probed before reuse
    assert pool.checkout(("a", "dead")) is None and dead.socket.aborted
    assert pool.checkout(("a", "silent")) is None and silent.socket.aborted
    assert pool.checkout(("a", "answering")) is answering


def test_keepalive_pings_quiet_sockets_and_drops_dead_ones(clock):
    pool = SocketPool(8, 300, clock=clock)
    quiet, dead = conv(clock, ("a", "q")), conv(clock, ("a", "d"), alive=False)
    pool.checkin(quiet)
    pool.checkin(dead)
    clock.now += sockets.REAP_EVERY
    pool.keepalive()
    assert quiet.socket.pings == 1 and dead.socket.aborted and len(pool) == 1
    pool.close_all()


def test_the_reaper_closes_expired_sockets_without_any_request():
    pool = SocketPool(8, 0.2)
    c = Conversation(FakeSocket(time.monotonic), ("a", "k"))
    pool.checkin(c)
    deadline = time.monotonic() + 5
    while not c.socket.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.socket.closed and len(pool) == 0


def test_what_a_socket_holds_is_replaced_or_forgotten(clock):
    c = conv(clock, ("a", "k"))
    c.remember("resp_1", [hold(i) for i in SENT], [backend_message("hi")])
    assert c.response_id == "resp_1" and len(c.sent) == 2 and c.output == (
        hold(backend_message("hi")),)
    c.remember(None, [], [])
    assert c.response_id is None and c.sent == () and c.output == ()


# -- fallback marks ------------------------------------------------------------------------

def test_a_fallback_mark_is_shared_through_the_state_dir_and_expires(tmp_path):
    now = [1000.0]
    path = tmp_path / "state" / sockets.FALLBACK_FILE
    one = FallbackMarks(path, 600, clock=lambda: now[0])
    two = FallbackMarks(path, 600, clock=lambda: now[0])  # another worker
    assert not one.active("acct-a") and not two.active("acct-a")
    one.mark("acct-a")
    assert one.active("acct-a") and two.active("acct-a")
    assert not two.active("acct-b")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text()) == {"acct-a": 1600.0}
    now[0] += 601
    assert not one.active("acct-a") and not two.active("acct-a")


def test_a_broken_marks_file_is_ignored(tmp_path):
    path = tmp_path / sockets.FALLBACK_FILE
    path.write_text("{not json")
    marks = FallbackMarks(path, 600)
    assert not marks.active("acct-a")
    marks.mark("acct-a")
    assert marks.active("acct-a")


# -- framing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text,kind", [
    ('{"type":"response.created","response":{}}', "response.created"),
    ('{"type": "response.output_text.delta", "delta": "x"}', "response.output_text.delta"),
    ('{"sequence_number":1,"type":"response.completed"}', "response.completed"),
    ('{"type":"error","status":400,"error":{}}', "error"),
])
def test_a_backend_message_becomes_the_sse_frame_http_would_carry(text, kind):
    got_kind, frame = sse_frame(text)
    assert got_kind == kind
    assert frame == f"event: {kind}\ndata: {text}\n\n".encode()


def test_a_message_with_newlines_stays_one_sse_frame():
    kind, frame = sse_frame('{"type": "response.created",\n "response": {}}')
    assert kind == "response.created"
    assert frame == b'event: response.created\ndata: {"type":"response.created","response":{}}\n\n'
