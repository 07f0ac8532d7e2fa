"""gateway.api.common
~~~~~~~~~~~~~~~~~~~~~~
What every blueprint does the same way: start the request record, read the
JSON body, authenticate, and write an SSE or JSON answer.
"""
from __future__ import annotations

from flask import Response
from flask import current_app
from flask import g
from flask import request

from .. import jsonio
from ..security import limits
from .. import relay
from ..dialects.validate import check_model_name
from ..errors import bad_request
from ..record import RequestRecord

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def state():
    return current_app.extensions["gateway"]


def begin(dialect: str, transport: str = "http") -> RequestRecord:
    """before_request: the dialect (for error shapes) and the request's record."""
    ctx = g._get_current_object()  # each use of a context proxy costs a lookup (~1.5 µs)
    ctx.dialect = dialect
    ctx.record = record = state().executor.record_for(dialect, None, transport)
    return record


def authenticate(authorization: str | None = None) -> None:
    """Sets g.principal (the client key id, or None); raises 401 GatewayError.

    *authorization* is the dialect's reading of the key (default: the
    ``Authorization`` header)."""
    req, ctx = request._get_current_object(), g._get_current_object()  # one lookup each
    headers = req.headers
    forwarded = "X-Forwarded-For" in headers or "Forwarded" in headers
    st = state()
    ctx.principal = principal = st.keys.check(authorization or headers.get("Authorization"),
                                              forwarded)
    if st.executor.gate is not None:
        st.executor.gate.check_key(principal)  # an expired or revoked key: 401
    record = ctx.get("record")
    if record is not None:
        record.key_id = principal
    environ = req.environ
    if st.ceilings is not None and limits.ENVIRON_KEY not in environ:
        kind = limits.SOCKET if headers.get("Upgrade", "").lower() == "websocket" else limits.STREAM
        environ[limits.ENVIRON_KEY] = st.ceilings.acquire(kind, principal)


def json_body() -> dict:
    raw = request.get_data(cache=False)
    if not raw:
        raise bad_request("The request body is empty; send a JSON object.")
    try:
        body = jsonio.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    if not jsonio.within_depth(body):
        raise bad_request(f"The request body nests more than {jsonio.MAX_DEPTH} levels deep.",
                          code="json_too_deep")
    model = body.get("model")
    check_model_name(model)  # before the name reaches the record, a log line or a row
    record = g.get("record") if isinstance(model, str) else None
    if record is not None:
        record.model_asked = model
    return body


def json_response(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(jsonio.dumps(payload), status=status,
                    headers=headers or {}, mimetype="application/json")


def sse_response(frames, headers: dict, stream=None) -> Response:
    """*frames* yields bytes only, so gunicorn iterates it as it is: no werkzeug
    encoding and closing wrappers, two Python frames per write fewer. With the
    open upstream *stream*, under the gateway's gunicorn worker, the answer after
    its first frames is carried by the worker's relay (:mod:`gateway.relay`)."""
    merged = dict(SSE_HEADERS)
    merged.update(headers)
    if stream is not None:
        frames = relayed(frames, stream)
    return Response(frames, headers=merged, mimetype="text/event-stream",
                    direct_passthrough=True)


def relayed(frames, stream):
    """*frames* as a relayed body where this connection allows it: plain HTTP/1.1
    under :class:`gateway.workers.ThreadWorker` (which marks such requests), and
    ``server.relay`` on. Anything else (TLS in gunicorn, HTTP/1.0, HEAD, gevent,
    Flask's test client) keeps a thread per stream."""
    environ = request.environ
    loop = relay_for(environ)
    client = environ.get("gunicorn.socket")
    if (loop is None or client is None or environ.get("SERVER_PROTOCOL") != "HTTP/1.1"
            or environ.get("REQUEST_METHOD") == "HEAD"):
        return frames
    return relay.Body(frames, stream, loop, client)


def relay_for(environ) -> "relay.Relay | None":
    """The worker's relay where this connection's socket may be written by it
    (``server.relay`` on, and the worker marked the request), else None."""
    if not state().config.server.relay or not environ.get(relay.ENVIRON_KEY):
        return None
    return relay.shared()
