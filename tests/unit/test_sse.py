"""SSE parsing and writing: split frames, CRLF, comments, multi-line data."""
from __future__ import annotations

from gateway.sse import SSEParser, encode, make_event


def test_parser_handles_split_frames_crlf_and_comments():
    p = SSEParser()
    stream = (b": keep-alive\n\nevent: response.created\r\ndata: {\"type\":\"response.created\"}\r\n\r\n"
              b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\n"
              b"data: not json\n\n" b"data: {\"type\":\"response.completed\"}")
    events = []
    for i in range(0, len(stream), 7):
        events += p.feed(stream[i:i + 7])
    events += p.flush()
    assert [e.type for e in events] == ["response.created", "response.output_text.delta", "",
                                        "response.completed"]
    assert events[1].data["delta"] == "a"
    assert events[2].data is None
    assert events[3].terminal


def test_multiline_data_and_encode_roundtrip():
    p = SSEParser()
    [e] = p.feed(b"data: {\"a\":\ndata: 1}\n\n")
    assert e.data == {"a": 1}
    [e2] = SSEParser().feed(encode({"type": "x", "v": 1}, "x"))
    assert e2.type == "x" and e2.data == {"type": "x", "v": 1}
    made = make_event({"type": "error", "code": "c"})
    assert made.raw.startswith(b"event: error\n") and made.terminal
