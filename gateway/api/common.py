"""gateway.api.common
~~~~~~~~~~~~~~~~~~~~~~
What every endpoint does the same way: read the JSON body, authenticate,
and write an SSE or JSON answer with the gateway's headers.
"""
from __future__ import annotations

from flask import Response
from flask import current_app
from flask import g
from flask import request

from .. import jsonio
from ..errors import GatewayError
from ..errors import bad_request
from ..sse import KEEPALIVE

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

RETENTION_VALUES = ("in_memory", "24h")


def state():
    return current_app.extensions["gateway"]


def authenticate() -> None:
    """before_request hook: sets g.principal (the client key id, or None)."""
    headers = request.headers
    forwarded = "X-Forwarded-For" in headers or "Forwarded" in headers
    g.principal = state().keys.check(headers.get("Authorization"), forwarded)


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
    return body


def require_model(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise bad_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' must be a non-empty string.", param="model")
    return model


def check_type(body: dict, name: str, types, label: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, types):
        raise bad_request(f"'{name}' must be {label}.", param=name)


def check_retention(body: dict) -> None:
    value = body.get("prompt_cache_retention")
    if value is not None and value not in RETENTION_VALUES:
        raise bad_request(
            f"Invalid 'prompt_cache_retention': {value!r}. Supported values are "
            "'in_memory' and '24h'.", param="prompt_cache_retention", code="invalid_value")


def json_response(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(jsonio.dumps(payload), status=status,
                    headers=headers or {}, mimetype="application/json")


def sse_response(frames, headers: dict) -> Response:
    merged = dict(SSE_HEADERS)
    merged.update(headers)
    return Response(frames, headers=merged, mimetype="text/event-stream")


def error_response(err: GatewayError) -> Response:
    return json_response(err.body(), err.status, err.headers())


def keepalive_frame() -> bytes:
    return KEEPALIVE
