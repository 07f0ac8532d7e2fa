"""Stop-sequence emulation shared by the dialects: one row per rule, and the
property that streaming with holds gives exactly the text a whole-answer cut
gives, however the text is split into deltas."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from gateway.dialects.messages.events import MessagesStreamTranslator
from gateway.dialects.stops import first_stop
from gateway.dialects.stops import held_length
from gateway.dialects.stops import release
from gateway.sse import SSEParser
from gateway.sse import make_event

FIRST = [
    ("none", "hello", ["END"], (-1, None)),
    ("one", "a END b", ["END"], (2, "END")),
    ("earliest wins", "a STOP b END", ["END", "STOP"], (2, "STOP")),
    ("at start", "END", ["END"], (0, "END")),
    ("no stops", "END", [], (-1, None)),
]


@pytest.mark.parametrize("text,stops,expected", [f[1:] for f in FIRST], ids=[f[0] for f in FIRST])
def test_first_stop(text, stops, expected):
    assert first_stop(text, stops) == expected


HELD = [
    ("nothing to hold", "hello", ["END"], 0),
    ("one char", "hello E", ["END"], 1),
    ("two chars", "hello EN", ["END"], 2),
    ("whole sequence is not held (it is a match)", "hello END", ["END"], 0),
    ("longest of several", "xab", ["abc", "bz"], 2),
    ("text shorter than the sequence", "a", ["abc"], 1),
]


@pytest.mark.parametrize("text,stops,expected", [h[1:] for h in HELD], ids=[h[0] for h in HELD])
def test_held_length(text, stops, expected):
    assert held_length(text, stops) == expected


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.text(alphabet="abE ND", min_size=1, max_size=5), min_size=1, max_size=6),
       stops=st.lists(st.sampled_from(["END", "ab", "b", "NDa"]), min_size=1, max_size=2))
def test_released_text_is_the_whole_text_cut_at_its_first_stop(pieces, stops):
    """What ``release`` sends, delta by delta, plus what it holds at the end is the
    whole text up to its first stop sequence; it reports that sequence once."""
    full = "".join(pieces)
    cut, first = first_stop(full, stops)
    sent, held, hit = "", "", None
    for piece in pieces:
        text, held, hit = release(held, piece, stops)
        sent += text
        if hit is not None:
            break
    assert sent + held == (full[:cut] if cut >= 0 else full)
    assert hit == first and (hit is None or held == "")


def _ev(kind, **payload):
    return make_event({"type": kind, **payload})


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.text(alphabet="abE ND", min_size=1, max_size=5), min_size=1, max_size=6),
       stops=st.lists(st.sampled_from(["END", "ab", "b", "NDa"]), min_size=1, max_size=2))
def test_streamed_text_equals_the_whole_answer_cut(pieces, stops):
    full = "".join(pieces)
    cut, _ = first_stop(full, stops)
    t = MessagesStreamTranslator("m", stop=stops)
    raw = b"".join(t.feed(_ev("response.created", response={})))
    for p in pieces:
        raw += b"".join(t.feed(_ev("response.output_text.delta", item_id="i", output_index=0, delta=p)))
    raw += b"".join(t.feed(_ev("response.completed", response={})))
    shown = "".join(e.data["delta"]["text"] for e in SSEParser().feed(raw)
                    if e.name == "content_block_delta")
    assert shown == (full[:cut] if cut >= 0 else full)
