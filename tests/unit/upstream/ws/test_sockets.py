"""``codex_transport = "auto"``: which turns wait for an upgrade (none) and when a
conversation's socket is opened (in the background, from its second turn)."""
from __future__ import annotations

import threading
import types
from dataclasses import replace

import pytest

from gateway.config import UpstreamConfig
from gateway.errors import UpstreamBroken
from gateway.upstream.ws import sockets as mod
from gateway.upstream.ws.sockets import CodexSockets

ACCOUNT = types.SimpleNamespace(id="acct-a", kind="codex")
PROFILE = types.SimpleNamespace(url=lambda account: "http://127.0.0.1:9/backend-api/codex",
                                forwards=lambda name: False)
BODY = {"input": [{"type": "message", "role": "user", "content": "hi"}]}


class Upgrades:
    """Stands in for ``client.connect``: counts upgrades; each waits for *gate*."""

    def __init__(self):
        self.count = 0
        self.gate = threading.Event()
        self.done = threading.Semaphore(0)

    def __call__(self, url, headers, connect_timeout, read_timeout):
        self.count += 1
        self.gate.wait(10)
        self.done.release()
        return types.SimpleNamespace(closed=False, last_used=0.0, last_heard=0.0,
                                     close=lambda code=1000: None, abort=lambda: None,
                                     send_text=self.broken)

    @staticmethod
    def broken(text):
        raise UpstreamBroken("the test's socket breaks at once")


def sockets(tmp_path, monkeypatch, **cfg):
    upgrades = Upgrades()
    monkeypatch.setattr(mod.client, "connect", upgrades)
    ws = CodexSockets(replace(UpstreamConfig(), **cfg), tmp_path)
    return ws, upgrades


def send(ws, key):
    return ws.send(ACCOUNT, PROFILE, ("principal", key), BODY, {"session_id": key}, (1.0, 1.0))


def test_a_first_turn_goes_over_http_and_opens_nothing(tmp_path, monkeypatch):
    ws, upgrades = sockets(tmp_path, monkeypatch)
    assert [send(ws, f"one-shot-{i}") for i in range(50)] == [None] * 50
    assert upgrades.count == 0 and len(ws.pool) == 0


def test_the_second_turn_opens_one_socket_in_the_background_for_the_next(tmp_path,
                                                                         monkeypatch):
    ws, upgrades = sockets(tmp_path, monkeypatch)
    assert send(ws, "conv") is None and upgrades.count == 0
    assert send(ws, "conv") is None  # over HTTP, not waiting for the upgrade
    assert send(ws, "conv") is None  # the upgrade is still under way: not a second one
    assert upgrades.count == 1 and len(ws.pool) == 0
    upgrades.gate.set()
    assert upgrades.done.acquire(timeout=10)
    for _ in range(100):  # the thread puts it in the pool right after the upgrade
        if ws.pool.idle(("acct-a", "principal", "conv")) == 1:
            break
        threading.Event().wait(0.01)
    assert ws.pool.idle(("acct-a", "principal", "conv")) == 1
    assert ws.pool.idle(("acct-a", "principal", "other")) == 0


def test_the_turn_counter_is_bounded(tmp_path, monkeypatch):
    ws, upgrades = sockets(tmp_path, monkeypatch)
    monkeypatch.setattr(mod, "SEEN_KEYS", 10)
    for i in range(30):
        send(ws, f"k{i}")
    assert len(ws._seen) == 10 and upgrades.count == 0


def test_websocket_mode_and_zero_open_the_socket_on_the_turns_path(tmp_path, monkeypatch):
    ws, upgrades = sockets(tmp_path, monkeypatch, codex_transport="websocket")
    upgrades.gate.set()
    with pytest.raises(UpstreamBroken):  # the turn itself upgraded (and its socket broke)
        send(ws, "conv")
    assert upgrades.count == 1
    ws, upgrades = sockets(tmp_path / "zero", monkeypatch, websocket_open_after_turns=0)
    upgrades.gate.set()
    assert send(ws, "conv") is None and upgrades.count == 1  # upgraded, broke: HTTP serves
