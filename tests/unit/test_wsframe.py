"""The backend's usual packets read without wsproto: the same messages, in the same
order, as wsproto alone reads from the same packets, however frames are cut."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, Ping, TextMessage

from gateway.wsframe import Splitter

_server = Connection(ConnectionType.SERVER)  # unmasked frames, as a server sends them

texts = st.text(max_size=40) | st.text(min_size=120, max_size=300) | st.builds(
    lambda n: "x" * n, st.integers(65530, 70010))  # the 7-, 16- and 64-bit length forms
piece = st.one_of(
    texts.map(lambda t: [TextMessage(data=t)]),
    st.lists(st.text(min_size=1, max_size=30), min_size=2, max_size=4).map(  # fragmented
        lambda parts: [TextMessage(data=p, message_finished=i == len(parts) - 1)
                       for i, p in enumerate(parts)]),
    st.binary(max_size=20).map(lambda b: [Ping(payload=b)]),
    st.binary(max_size=20).map(lambda b: [BytesMessage(data=b)]),
)


def encode(events) -> bytes:
    return b"".join(_server.send(event) for event in events)


def read(packets, after=b"", fast=True):
    """What the gateway's socket reader makes of *packets*: text messages and the
    other events, in order."""
    conn = Connection(ConnectionType.CLIENT)
    splitter = Splitter(after) if fast else None
    if after:
        conn.receive_data(after)
    out, parts = [], []

    def drain():
        for event in conn.events():
            if isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    out.append("".join(parts))
                    parts.clear()
            else:
                out.append(type(event).__name__)

    drain()
    for packet in packets:
        messages = splitter.feed(packet) if splitter else None
        if messages is not None:
            out.extend(messages)
            continue
        conn.receive_data(packet)
        drain()
    return out


def cut(data: bytes, points) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(marks, marks[1:]) if b > a]


@settings(max_examples=150, deadline=None)
@given(st.lists(piece, max_size=8), st.lists(st.integers(0, 1 << 20), max_size=12),
       st.integers(0, 3))
def test_any_frames_cut_anywhere_read_as_wsproto_reads_them(pieces, points, handshake_cut):
    events = [e for p in pieces for e in p]
    data = encode(events)
    after, rest = data[:handshake_cut], data[handshake_cut:]  # bytes that came with the 101
    assert read(cut(rest, points), after) == read(cut(rest, points), after, fast=False)


def test_one_event_per_packet_never_reaches_wsproto():
    frames = [encode([TextMessage(data=f'{{"type":"x","n":{i}}}')]) for i in range(3)]
    splitter = Splitter()
    assert [splitter.feed(f) for f in frames] == [[f'{{"type":"x","n":{i}}}'] for i in range(3)]
    assert splitter.feed(frames[0] + frames[1]) == ['{"type":"x","n":0}', '{"type":"x","n":1}']


def test_after_a_split_frame_packets_go_to_wsproto_until_a_boundary():
    a, b = encode([TextMessage(data="a" * 300)]), encode([TextMessage(data="b")])
    splitter = Splitter()
    assert splitter.feed(a[:100]) is None  # half a frame
    assert splitter.feed(a[100:]) is None  # its end: wsproto has the start
    assert splitter.feed(b) == ["b"]       # a frame of its own again


def test_bytes_after_the_upgrade_send_the_next_packet_to_wsproto():
    splitter = Splitter(encode([TextMessage(data="early")]))
    assert splitter.feed(encode([TextMessage(data="next")])) is None
    assert splitter.feed(encode([TextMessage(data="then")])) == ["then"]


def test_a_header_split_over_packets_keeps_the_boundaries():
    a, b = encode([TextMessage(data="a" * 300)]), encode([TextMessage(data="b")])
    splitter = Splitter()
    assert splitter.feed(a[:3]) is None and splitter.feed(a[3:]) is None
    assert splitter.feed(b) == ["b"]  # back on a boundary: read without wsproto


@given(st.text(max_size=300) | st.builds(lambda n: "é" * n, st.integers(30000, 40000)))
@settings(max_examples=60, deadline=None)
def test_a_text_frame_is_what_wsproto_writes(text):
    from gateway.wsframe import text_frame
    assert text_frame(text) == _server.send(TextMessage(data=text))
