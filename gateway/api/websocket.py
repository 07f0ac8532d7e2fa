"""gateway.api.websocket
~~~~~~~~~~~~~~~~~~~~~~~~~
``GET /v1/responses`` (and ``/backend-api/codex/responses``) with
``Upgrade: websocket``: the Responses API over a WebSocket, as Codex CLI opens it
when its provider ``supports_websockets`` (and by default for its built-in
provider pointed at the gateway).

Thin: it checks the upgrade (the client key before any handshake), takes the
socket over from gunicorn and hands it to :class:`gateway.clientws.session.Session`.
With ``server.websockets = false`` every upgrade gets 426, which makes Codex
fall back to HTTP at once (404/405 cost it seven retries, about 6 s).
"""
from __future__ import annotations

from flask import Blueprint, Response, g, request
from werkzeug.datastructures import Headers

from ..clientws import connection
from ..errors import GatewayError, bad_request
from ..executor import Call
from ..clientws.session import TICK, Session
from . import common
from ..dialects.responses.kept import Turn
from ..dialects.responses.request import translate_request

bp = Blueprint("websocket", __name__)

# Upgrade-only headers: they describe this hop, never a turn.
_HOP_HEADERS = ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol")


def upgrade():
    """Accept a Responses WebSocket, or say why not (JSON, before any handshake).

    The rules are WebSocket rules (werkzeug matches them only for ``GET`` with
    ``Connection: upgrade`` and ``Upgrade: websocket``); a plain GET still gets
    the 405 of the POST-only routes.
    """
    headers = request.headers
    st = common.state()
    if not st.config.server.websockets:
        raise GatewayError(426, "WebSockets are turned off on this gateway "
                           "(server.websockets = false): use POST /v1/responses.",
                           code="websockets_disabled")
    common.authenticate()
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        err = GatewayError(426, "Unsupported WebSocket version: this gateway speaks version 13.",
                           code="unsupported_websocket_version")
        return common.json_response(err.body(), 426, {"Sec-WebSocket-Version": "13"})
    key = headers.get("Sec-WebSocket-Key")
    if not connection.valid_key(key):
        raise bad_request("Missing or invalid Sec-WebSocket-Key header.",
                          param="Sec-WebSocket-Key", code="invalid_websocket_handshake")
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        raise GatewayError(426, "This server cannot take the connection over for a WebSocket "
                           "(run the gateway under gunicorn): use POST /v1/responses.",
                           code="websockets_unavailable")
    client_headers = Headers(headers)
    for name in _HOP_HEADERS:
        client_headers.remove(name)
    sock.sendall(connection.handshake_response(key))
    server = st.config.server
    ws = connection.WebSocket(sock, server.max_body_bytes,
                              max_frame_bytes=server.websocket_max_frame_bytes,
                              frame_timeout=server.client_timeout)
    session = Session(ws, _upstream(st, g.principal, st.executor.open), _normalise,
                      client_headers, keepalive=st.keepalive, stopping=connection.stopping,
                      prewarm_upstream=_upstream(st, g.principal, st.executor.prewarm),
                      relay=common.relay_for(request.environ),
                      begin=lambda body, hdrs: Turn(body, st.responses_store, g.principal, hdrs))
    session.run()  # until the socket ends; never raises
    return _Hijacked()


def _normalise(body: dict) -> dict:
    return translate_request(body).responses


def _upstream(st, principal, open_call):
    """The one way the WebSocket path calls the executor: one request record per
    ``response.create`` frame, events ticking every ``TICK`` seconds so the session
    notices a client that left or a worker shutting down. *open_call* is
    ``executor.open`` for a turn, ``executor.prewarm`` for a prewarm (forwarded on
    the conversation's upstream socket when it is reached over WebSocket, else None:
    answered locally)."""
    def call(body: dict, headers) -> object:
        record = st.executor.record_for("responses", principal, "websocket", body.get("model"))
        return open_call(Call(body=body, headers=headers, principal=principal,
                              endpoint="responses", record=record, stream=True, keepalive=TICK))
    return call


for _path in ("/v1/responses", "/backend-api/codex/responses"):
    bp.add_url_rule(_path, "upgrade", upgrade, methods=["GET"], websocket=True)


class _Hijacked(Response):
    """The socket was taken over and is finished: gunicorn must write nothing more
    on it and must not keep it alive. gunicorn's worker ends a connection
    silently on StopIteration raised by the application (the convention other
    WSGI WebSocket libraries use too)."""

    def __call__(self, environ, start_response):
        raise StopIteration()
