"""Accounts kept on HTTP after a refused WebSocket, shared through the state dir."""
from __future__ import annotations

import json

from gateway.upstream.ws import fallback as sockets
from gateway.upstream.ws.fallback import FallbackMarks


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
