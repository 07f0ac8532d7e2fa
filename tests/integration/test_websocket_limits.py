"""F2: a client WebSocket's limits count bytes on the wire, before decoding
(docs/security.md): a message of 4-byte characters over the limit is 1009 and
the worker's memory stays flat; an unfinished frame is closed after the client
timeout. Raw sockets: no client library sends such frames."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.support import (CLIENT_KEY, gateway_env, peak_rss_kib, register_secret, raw_websocket, worker_pids, ws_close_code,
                           ws_frame_head)

LIMIT = 1 << 20  # server.max_body_bytes here: 1 MiB
EMOJI = "\U0001F600".encode()  # 4 bytes, one character


@pytest.fixture
def gw(gateway_factory, upstream, tmp_path):
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_SERVER_MAX_BODY_BYTES=LIMIT,
                      CODEX_GATEWAY_SERVER_CLIENT_TIMEOUT=2)
    return gateway_factory(env, workers=1, threads=8, name="wslimits")


def _close_code_for(gw, data: bytes) -> int | None:
    """Open a WebSocket, send *data* in the background (the server may close before
    it has read it all) and read the server's close code."""
    sock, status = raw_websocket(gw.port)
    assert status == 101

    def run():
        try:
            sock.sendall(data)
        except OSError:
            pass
    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    try:
        return ws_close_code(sock)
    finally:
        sender.join(30)
        sock.close()


def test_a_message_of_4_byte_characters_over_the_limit_is_1009_with_flat_memory(gw):
    (worker,) = worker_pids(gw)
    before = peak_rss_kib(worker)
    # 40 MiB on the wire but 10 Mi characters: counted as characters, the old check let
    # 1.25 of these through per limit; counted as bytes it is 40 times the limit.
    payload = b'{"type":"response.create","x":"' + EMOJI * (10 << 20) + b'"}'
    assert _close_code_for(gw, ws_frame_head(len(payload)) + payload) == 1009
    grown = peak_rss_kib(worker) - before
    assert grown < 16 * 1024, f"worker peak RSS grew {grown} KiB"


def test_bytes_count_not_characters(gw):
    """300 Ki characters (under the limit as characters), 1.2 MB on the wire: 1009."""
    payload = b'{"type":"response.create","x":"' + EMOJI * (300 << 10) + b'"}'
    assert _close_code_for(gw, ws_frame_head(len(payload)) + payload) == 1009


def test_fragments_adding_up_over_the_limit_are_1009(gw):
    """Each frame under the limit, the message over it (3 x 512 KiB of 4-byte characters)."""
    part = EMOJI * (128 << 10)  # 512 KiB
    frames = (ws_frame_head(len(part), opcode=1, fin=False) + part
              + ws_frame_head(len(part), opcode=0, fin=False) + part
              + ws_frame_head(len(part), opcode=0, fin=True) + part)
    assert _close_code_for(gw, frames) == 1009


def test_a_frame_never_finished_is_closed_after_the_client_timeout(gw):
    sock, status = raw_websocket(gw.port)
    assert status == 101
    sock.sendall(ws_frame_head(100) + b"{")  # 1 of 100 payload bytes, then silence
    assert ws_close_code(sock, timeout=20) == 1008
    sock.close()


def test_a_message_just_under_the_limit_is_still_read(gw):
    body = b'{"type":"response.create","model":"gpt-5-codex","input":"' + b"a" * (LIMIT - 200) + b'"}'
    sock, status = raw_websocket(gw.port)
    assert status == 101
    sock.sendall(ws_frame_head(len(body)) + body)
    sock.settimeout(15)
    first = sock.recv(65536)
    assert first and first[0] & 0x0F == 1, first[:40]  # a text frame (an answer), not a close
    sock.close()


# -- F3: per-key ceilings and the reserve ------------------------------------------------

KEY_B = register_secret("test-client-key-b-0123456789")
KEY_C = register_secret("test-client-key-c-0123456789")


@pytest.fixture
def shared(gateway_factory, upstream, tmp_path):
    """One worker, 8 threads: 2 WebSockets per key (the default: threads / 4), 2 threads
    in reserve (the default minimum), so 6 held slots at most."""
    env = gateway_env(upstream, tmp_path,
                      CODEX_GATEWAY_AUTH_CLIENT_KEYS=",".join((CLIENT_KEY, KEY_B, KEY_C)))
    return gateway_factory(env, workers=1, threads=8, name="ceilings")


def test_one_key_at_its_socket_ceiling_leaves_other_keys_and_healthz_served(shared):
    socks = []
    try:
        for _ in range(8):  # as many as the worker has threads: only the ceiling opens
            sock, status = raw_websocket(shared.port)
            socks.append(sock)
            if status != 101:
                break
        assert status == 429 and len(socks) == 3  # the third is refused before its handshake
        assert requests.get(shared.url + "/healthz", timeout=2).status_code == 200
        b = {"Authorization": f"Bearer {KEY_B}"}
        assert requests.get(shared.url + "/v1/models", headers=b, timeout=2).status_code == 200
        sock_b, status_b = raw_websocket(shared.port, key=KEY_B)
        socks.append(sock_b)
        assert status_b == 101
        r = requests.post(shared.url + "/v1/responses", headers=b, timeout=10,
                          json={"model": "gpt-5-codex", "input": "hi", "stream": False})
        assert r.status_code == 200
        for _ in range(2):
            sock_c, status_c = raw_websocket(shared.port, key=KEY_C)
            socks.append(sock_c)
            assert status_c == 101
        assert requests.get(shared.url + "/healthz", timeout=2).status_code == 200
    finally:
        for s in socks:
            s.close()
    # Closed sockets give their slots back.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sock, status = raw_websocket(shared.port)
        sock.close()
        if status == 101:
            break
        time.sleep(0.2)
    assert status == 101
    assert "Traceback" not in shared.logs()
