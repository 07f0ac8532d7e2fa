"""HTTP/1.1 body framing decoded from arbitrary packet boundaries."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream.http import body as framing


def chunked(parts: list[bytes], extension: bool = False) -> bytes:
    ext = b";name=value" if extension else b""
    return b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in parts if p) + b"0\r\n\r\n"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return [p for p in out if p]


@given(st.lists(st.binary(min_size=0, max_size=300), max_size=8),
       st.lists(st.integers(min_value=0), max_size=12), st.booleans())
def test_chunked_any_packet_boundaries_give_the_payload_and_the_end(parts, cuts, ext):
    wire = chunked(parts, ext)
    decoder = framing.Chunked()
    got = b"".join(decoder.feed(p) for p in split(wire, cuts))
    assert got == b"".join(parts)
    assert decoder.done
    decoder.at_eof()


def test_one_whole_chunk_per_packet_is_the_fast_path():
    decoder = framing.Chunked()
    assert decoder.feed(b"5\r\nhello\r\n") == b"hello"
    assert decoder.feed(b"1\r\n!\r\n") == b"!"
    assert not decoder.done
    assert decoder.feed(b"0\r\n\r\n") == b""
    assert decoder.done


def test_trailers_are_skipped():
    decoder = framing.Chunked()
    assert decoder.feed(b"2\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n") == b"ok"
    assert decoder.done


@pytest.mark.parametrize("wire", [b"zz\r\nab\r\n", b"-1\r\nab\r\n", b"2\r\nabXY", b"0x2\r\nab\r\n"])
def test_broken_framing_is_an_error(wire):
    with pytest.raises(framing.FramingError):
        framing.Chunked().feed(wire)


def test_a_chunked_body_cut_short_is_an_error_at_eof():
    decoder = framing.Chunked()
    decoder.feed(b"5\r\nhel")
    with pytest.raises(framing.FramingError):
        decoder.at_eof()


def test_length_and_until_close():
    body = framing.Length(4)
    assert body.feed(b"ab") == b"ab" and not body.done
    with pytest.raises(framing.FramingError):
        body.at_eof()
    assert body.feed(b"cd") == b"cd" and body.done
    with pytest.raises(framing.FramingError):
        framing.Length(1).feed(b"ab")
    until = framing.UntilClose()
    assert until.feed(b"x") == b"x" and not until.done
    until.at_eof()
