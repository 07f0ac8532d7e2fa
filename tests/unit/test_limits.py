"""gateway.limits: per-key ceilings and the reserve no key may take."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway.errors import GatewayError
from gateway.limits import SOCKET, STREAM, Ceilings, ClosingBody, Released, Shape, ENVIRON_KEY


def server(threads=16, sockets=0, streams=0, reserve=0):
    return SimpleNamespace(threads=threads, max_sockets_per_key=sockets,
                           max_streams_per_key=streams, reserve_threads=reserve)


def test_defaults_derive_from_threads_and_settings_override():
    assert Shape.of(server(1024)) == Shape(256, 512, 896)
    assert Shape.of(server(8)) == Shape(2, 4, 6)
    assert Shape.of(server(1)) == Shape(1, 1, 1)
    assert Shape.of(server(16, sockets=5, streams=7, reserve=4)) == Shape(5, 7, 12)


def test_a_key_stops_at_its_ceiling_and_the_reserve_is_nobodys():
    c = Ceilings(Shape(2, 3, 6))
    a = [c.acquire(SOCKET, "a") for _ in range(2)]
    with pytest.raises(GatewayError) as exc:
        c.acquire(SOCKET, "a")
    assert exc.value.status == 429 and exc.value.code == "too_many_websockets"
    b = [c.acquire(STREAM, "b") for _ in range(3)]
    with pytest.raises(GatewayError) as exc:
        c.acquire(STREAM, "b")
    assert exc.value.code == "too_many_concurrent_requests"
    d = c.acquire(SOCKET, "d")  # the sixth slot: the last one outside the reserve
    with pytest.raises(GatewayError) as exc:
        c.acquire(SOCKET, "e")
    assert exc.value.status == 503 and exc.value.retry_after == 1
    a[0].release()
    a[0].release()  # idempotent
    c.acquire(SOCKET, "e")
    assert c.held(SOCKET, "a") == 1 and c.held(STREAM, "b") == 3 and d


def test_the_middleware_gives_the_slot_back_when_the_answer_closes_or_raises():
    c = Ceilings(Shape(1, 1, 4))

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
