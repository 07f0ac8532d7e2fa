"""gateway.security.wslimits: frame and message sizes counted from frame headers, byte by byte."""
from __future__ import annotations

import pytest

from gateway.security.wslimits import FrameMeter
from tests.support import ws_frame_head


def _feed_bytewise(meter, data, now=0.0):
    for i in range(len(data)):
        code = meter.feed(data[i:i + 1], now)
        if code:
            return code
    return None


@pytest.mark.parametrize("feed", [lambda m, d: m.feed(d, 0.0), _feed_bytewise])
def test_limits_are_bytes_before_any_payload(feed):
    assert feed(FrameMeter(100), ws_frame_head(101)) == 1009          # declared: refused at once
    assert feed(FrameMeter(1000, 100), ws_frame_head(101)) == 1009    # the frame limit
    parts = (ws_frame_head(60, 1, fin=False) + b"a" * 60 + ws_frame_head(6, 9) + b"p" * 6
             + ws_frame_head(60, 0, fin=True))                        # a ping between fragments
    assert feed(FrameMeter(100), parts) == 1009
    ok = ws_frame_head(100) + b"a" * 100 + ws_frame_head(70000) + b"b" * 70000
    assert feed(FrameMeter(70000), ok) is None


def test_an_unfinished_frame_or_message_stalls_after_the_timeout():
    m = FrameMeter(1000, timeout=5)
    m.feed(ws_frame_head(10) + b"abc", now=100.0)
    assert not m.stalled(104.0) and m.stalled(105.5)
    m.feed(b"d" * 7, now=105.6)
    assert not m.stalled(1000.0)                                      # finished: idle is fine
    m.feed(ws_frame_head(3, fin=False) + b"abc", now=2000.0)          # a message left open
    assert m.stalled(2006.0)
