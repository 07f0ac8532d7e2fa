"""gateway.security.limits: per-key ceilings and the reserve no key may take."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway.errors import GatewayError
from gateway.security.limits import SOCKET, STREAM, Ceilings, ClosingBody, Released, Shape, ENVIRON_KEY


def server(threads=16, sockets=0, streams=0, reserve=0):
    return SimpleNamespace(threads=threads, max_sockets_per_key=sockets,
                           max_streams_per_key=streams, reserve_threads=reserve)


def test_defaults_derive_from_threads_and_settings_override():
    assert Shape.of(server(1024)) == Shape(256, 1024, 896, 1024)
    assert Shape.of(server(8)) == Shape(2, 8, 6, 8)
    assert Shape.of(server(1)) == Shape(1, 1, 1, 1)
    assert Shape.of(server(16, sockets=5, streams=7, reserve=4)) == Shape(5, 7, 12, 16)


def test_a_key_stops_at_its_ceiling_and_the_reserve_is_for_other_keys():
    c = Ceilings(Shape(2, 3, 6, 8))
    a = [c.acquire(SOCKET, "a") for _ in range(2)]
    with pytest.raises(GatewayError) as exc:
        c.acquire(SOCKET, "a")
    assert exc.value.status == 429 and exc.value.code == "too_many_websockets"
    b = [c.acquire(STREAM, "b") for _ in range(3)]
    with pytest.raises(GatewayError) as exc:
        c.acquire(STREAM, "b")
    assert exc.value.code == "too_many_concurrent_requests"
    d = [c.acquire(SOCKET, k) for k in ("b", "c", "c", "d")]  # six sockets: the shared part
    with pytest.raises(GatewayError) as exc:
        c.acquire(SOCKET, "d")  # a key that holds a socket cannot dig into the reserve
    assert exc.value.status == 503 and exc.value.retry_after == 1
    e = c.acquire(SOCKET, "e")  # a key holding none is still served ...
    with pytest.raises(GatewayError):
        c.acquire(SOCKET, "f")  # ... but the last thread is nobody's
    assert c.acquire(STREAM, "f")  # requests end: they need no reserve
    a[0].release()
    a[0].release()  # idempotent
    e.release()
    c.acquire(SOCKET, "f")
    assert c.held(SOCKET, "a") == 1 and c.held(STREAM, "b") == 3 and d and b


def test_the_middleware_gives_the_slot_back_when_the_answer_closes_or_raises():
    c = Ceilings(Shape(1, 1, 4, 8))

    def app(environ, start_response):
        environ[ENVIRON_KEY] = c.acquire(STREAM, "k")
        if environ.get("boom"):
            raise StopIteration()  # how a hijacked WebSocket ends
        return [b"x"]

    body = Released(app)({}, None)
    assert isinstance(body, ClosingBody) and list(body) == [b"x"] and c.held(STREAM, "k") == 1
    body.close()
    assert c.held(STREAM, "k") == 0
    with pytest.raises(StopIteration):
        Released(app)({"boom": True}, None)
    assert c.held(STREAM, "k") == 0
