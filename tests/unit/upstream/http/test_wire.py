"""The answer's header block parsed without the email package: exactly the stdlib's
``HTTPMessage`` (or the stdlib's own parse, for a block that is not plain)."""
from __future__ import annotations

import http.client
import io
from unittest import mock

from hypothesis import given, settings, strategies as st

from gateway.upstream.http import wire

CODEX = (b"Date: Sun, 06 Dec 2026 21:00:00 GMT\r\n"
         b"Content-Type: text/event-stream; charset=utf-8\r\n"
         b"Transfer-Encoding: chunked\r\n"
         b"x-codex-primary-used-percent: 12\r\n"
         b"set-cookie: __cf_bm=abc; path=/; HttpOnly\r\n"
         b"Set-Cookie: _cfuvid=def; path=/\r\n"
         b"x-empty:\r\n"
         b"x-spaces:  \t padded \t \r\n"
         b"cf-ray: 8f2a1b3c4d5e6f70-FRA\r\n"
         b"\r\n")


def both(block: bytes):
    return (http.client.parse_headers(io.BytesIO(block)),
            wire.parse_headers(io.BytesIO(block)))


def shape(value):
    """A message's whole state, comparable (defects by type, parts recursively)."""
    if isinstance(value, list):
        return [shape(v) for v in value]
    if not hasattr(value, "defects"):
        return value
    state = dict(vars(value), defects=[type(d) for d in value.defects])
    return type(value), {k: shape(v) for k, v in state.items()}


def assert_same(block: bytes) -> None:
    stdlib, fast = both(block)
    assert isinstance(fast, http.client.HTTPMessage) and type(stdlib) is http.client.HTTPMessage
    assert shape(fast)[1] == shape(stdlib)[1], block
    assert fast.items() == stdlib.items() and fast.items() is not fast._headers
    for name in {n.lower() for n in stdlib.keys()} | {"content-length", "transfer-encoding"}:
        assert (fast.get(name), fast.get_all(name)) == (stdlib.get(name), stdlib.get_all(name))


def test_a_codex_answers_headers_are_built_without_the_email_parser():
    with mock.patch.object(http.client, "parse_headers", side_effect=AssertionError):
        msg = wire.parse_headers(io.BytesIO(CODEX + b"body"))
    assert msg.get_all("set-cookie") == ["__cf_bm=abc; path=/; HttpOnly", "_cfuvid=def; path=/"]
    assert msg["x-spaces"] == "padded \t " and msg["x-empty"] == ""
    assert_same(CODEX)


def test_the_stdlib_limits_still_hold():
    import pytest
    with pytest.raises(http.client.HTTPException):
        wire.parse_headers(io.BytesIO(b"a: b\r\n" * 101 + b"\r\n"))
    with pytest.raises(http.client.LineTooLong):
        wire.parse_headers(io.BytesIO(b"a: " + b"b" * 70000 + b"\r\n\r\n"))


def test_the_response_class_uses_it_and_the_stdlib_module_is_untouched():
    assert http.client.parse_headers is not wire.parse_headers
    assert wire.Response.begin.__globals__["parse_headers"] is wire.parse_headers
    assert wire.Connection.response_class is wire.TLSConnection.response_class is wire.Response
    sock = mock.Mock()
    sock.makefile.return_value = io.BytesIO(b"HTTP/1.1 200 OK\r\n" + CODEX + b"x")
    resp = wire.Response(sock)
    with mock.patch.object(http.client, "parse_headers", side_effect=AssertionError):
        resp.begin()
    assert (resp.status, resp.chunked, resp.will_close) == (200, True, False)
    assert resp.msg.get_all("Set-Cookie")[1] == "_cfuvid=def; path=/"


NAME = st.text(st.sampled_from("abcXYZ-_09:!~ \t\"()"), max_size=8)
VALUE = st.text(st.sampled_from("ab ;=,/\t:\"\r\x0b\x0c\x1c\x85\xe9\x7f\x00"), max_size=10)
ENDING = st.sampled_from(["\r\n", "\r\n", "\r\n", "\n", "\r", ""])
LINE = st.one_of(
    st.tuples(NAME, VALUE, ENDING).map(lambda t: f"{t[0]}:{t[1]}{t[2]}"),  # name: value
    st.tuples(st.sampled_from(["x-codex-a", "Set-Cookie", "content-type", "Content-Length"]),
              st.sampled_from([" 1", " text/event-stream", "multipart/mixed; boundary=b",
                               " message/rfc822", "", " a=b; path=/", "  x  "]),
              ENDING).map(lambda t: f"{t[0]}:{t[1]}{t[2]}"),
    st.tuples(st.sampled_from([" ", "\t", "From ", ">", ""]), VALUE, ENDING)
      .map(lambda t: "".join(t)),  # folded lines, "From " lines, lines without a colon
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, max_size=8), st.sampled_from(["\r\n", "\n", "", "x"]))
def test_any_header_block_gives_exactly_what_the_stdlib_gives(lines, end):
    block = ("".join(lines) + end).encode("latin-1")
    assert_same(block)


PLAIN_NAME = st.text(st.sampled_from("abcXYZ-_09!~\"()"), min_size=1, max_size=8)
PLAIN_VALUE = st.text(st.sampled_from("ab ;=,/\t:\"()~"), max_size=12)
PLAIN_LINE = st.tuples(PLAIN_NAME, PLAIN_VALUE).map(lambda t: f"{t[0]}:{t[1]}\r\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(PLAIN_LINE, max_size=12), st.one_of(st.none(), LINE), st.integers(0, 12))
def test_plain_blocks_take_the_fast_path_and_one_odd_line_defers(lines, odd, at):
    if odd is not None:
        lines.insert(at, odd)
    block = ("".join(lines) + "\r\n").encode("latin-1")
    assert_same(block)
    if odd is None:  # plain: the email parser is never asked
        with mock.patch.object(http.client, "parse_headers", side_effect=AssertionError):
            wire.parse_headers(io.BytesIO(block))
