"""The fast JSON paths give the standard library's values, and never refuse
what the standard library accepts; the SSE fast paths split frames exactly as
the general parser does."""
from __future__ import annotations

import json
import math

from hypothesis import given, strategies as st

from gateway import jsonio
from gateway.sse import SSEParser, parse_frame

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(json_values)
def test_round_trip_matches_the_standard_library(value):
    data = jsonio.dumps(value)
    assert json.loads(data) == value
    assert jsonio.loads(data) == json.loads(json.dumps(value))


def test_what_orjson_refuses_falls_back():
    assert math.isnan(jsonio.loads(b'{"x": NaN}')["x"])
    big = {"n": 2**70}
    assert jsonio.loads(jsonio.dumps(big)) == big
    assert jsonio.dumps_text({"é": "ü"}) == '{"é":"ü"}'
    lone = jsonio.loads(b'{"s": "\\ud800"}')  # valid JSON, a lone surrogate
    assert jsonio.loads(jsonio.dumps(lone)) == lone


def test_invalid_json_raises_value_error():
    for bad in (b"{", b"\xff", b"[1,]"):
        try:
            jsonio.loads(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def _general(frame: bytes):
    """The frame through the general path (the fast paths skip on a comment line)."""
    return parse_frame(b": x\n" + frame)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz._", max_size=12)
payloads = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                   max_size=40)


@given(names, payloads, st.booleans())
def test_fast_frame_paths_agree_with_the_general_one(name, data, named):
    frame = (f"event: {name}\n" if named else "").encode() + f"data: {data}".encode()
    fast, slow = parse_frame(frame), _general(frame)
    assert (fast.type, fast.data_text, fast.raw) == (slow.type, slow.data_text, frame + b"\n\n")


@given(st.lists(st.tuples(names, payloads), min_size=1, max_size=5), st.integers(1, 50))
def test_whole_frame_chunks_and_split_chunks_give_the_same_events(frames, step):
    wire = b"".join(f"event: {n}\ndata: {d}\n\n".encode() for n, d in frames)
    whole = [e for n, d in frames
             for e in SSEParser().feed(f"event: {n}\ndata: {d}\n\n".encode())]
    parser = SSEParser()
    split = [e for i in range(0, len(wire), step) for e in parser.feed(wire[i:i + step])]
    assert [(e.type, e.data_text) for e in whole] == [(e.type, e.data_text) for e in split]
