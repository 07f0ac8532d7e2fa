"""gateway.dialects.messages.errors
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
:class:`GatewayError` in Anthropic's shape: ``{"type": "error", "error":
{"type": …, "message": …}}``, as JSON before the first byte and as an
``event: error`` SSE frame after it.

The type follows the status the way Anthropic's API uses it, because Claude
Code decides what to do from it: it retries 429, 5xx, 529 and even 401 with
the same body, and treats a 400 as "strip a feature and resend". So
``overloaded_error`` (529) is only used when the upstream itself said it is
overloaded; a gateway fault stays an ``api_error``.
"""
from __future__ import annotations

from gateway import failures
from gateway.errors import GatewayError
from gateway.jsonio import dumps_text

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Upstream codes (Responses ``error.code``) that mean "the model is overloaded".
OVERLOADED_CODES = frozenset({
    "server_is_overloaded", "overloaded", "overloaded_error", "server_overloaded",
})
# In-stream Responses error codes -> the Anthropic type a client should act on.
_TYPE_BY_CODE = {
    "rate_limit_exceeded": "rate_limit_error",
    "usage_limit_reached": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "all_accounts_cooling_down": "rate_limit_error",
    "usage_not_included": "permission_error",
    "context_length_exceeded": "invalid_request_error",
    "invalid_prompt": "invalid_request_error",
    "invalid_request": "invalid_request_error",
    "upstream_timeout": "timeout_error",
}


def is_overloaded(code, message, status: int = 502) -> bool:
    """Did the upstream say it is overloaded? (a code, or a 5xx saying so)."""
    if isinstance(code, str) and code.lower() in OVERLOADED_CODES:
        return True
    return status >= 500 and isinstance(message, str) and "overloaded" in message.lower()


def error_status(err: GatewayError) -> int:
    """The HTTP status to answer with: 529 for an upstream overload, else the error's."""
    if err.status != 529 and is_overloaded(err.code, err.message, err.status):
        return 529
    return err.status


def error_type(err: GatewayError) -> str:
    status = error_status(err)
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    if status >= 500:
        return "api_error"
    return _TYPE_BY_CODE.get(err.code or "", "invalid_request_error")


def error_body(err: GatewayError) -> dict:
    """The JSON body for an error answered before the first byte."""
    return {"type": "error", "error": {"type": error_type(err), "message": err.message}}


def error_headers(err: GatewayError) -> dict[str, str]:
    """``retry-after`` (seconds) when the error carries one, as the SDKs read it."""
    if err.retry_after is None:
        return {}
    return {"retry-after": str(err.retry_after)}


def error_frame(err: GatewayError) -> bytes:
    """The ``event: error`` SSE frame for a failure after the first byte."""
    return frame_for(error_type(err), err.message)


def frame_for(kind: str, message: str) -> bytes:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return f"event: error\ndata: {dumps_text(body)}\n\n".encode()


def stream_error_type(code, message) -> str:
    """An in-stream upstream failure (Responses ``error``/``response.failed``) -> the
    type the same failure has over HTTP before the first byte."""
    return error_type(failures.in_stream(code if isinstance(code, str) else None, message))
