"""gateway.dialects.gemini.errors
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
:class:`GatewayError` in Google's shape: ``{"error": {"code", "message",
"status", "details"}}``, as JSON before the first byte and as a bare JSON
line after it.

``status`` is the google.rpc code name the SDKs read (google-genai raises
``ClientError``/``ServerError`` with ``.status`` from it). ``details`` carries
an ``ErrorInfo`` whose ``reason`` is the gateway's own code, and a
``RetryInfo`` (``retryDelay: "30s"``) when the error says when to come back,
which Gemini CLI waits for before it retries a 429.

After the first byte there is no error event in Gemini's stream: Google's
SDKs read a chunk that is a JSON object with ``error`` as the failure (the
Node SDK when it arrives alone, the Python SDK on its own line), so the frame
is that object on a line of its own, never an SSE ``data:`` line.
"""
from __future__ import annotations

from gateway import failures
from gateway.errors import GatewayError
from gateway.jsonio import dumps_text

DOMAIN = "codex-gateway"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",  # the upstream is overloaded: worth retrying, as Google's 503
}
def status_name(code: int) -> str:
    if code in STATUS_NAMES:
        return STATUS_NAMES[code]
    return "INTERNAL" if code >= 500 else "INVALID_ARGUMENT"


def error_object(code: int, message: str, reason: str | None = None,
                 retry_after: int | None = None) -> dict:
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": (reason or status_name(code)).upper(), "domain": DOMAIN}]
    if retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{max(int(retry_after), 0)}s"})
    return {"error": {"code": code, "message": message, "status": status_name(code),
                      "details": details}}


def error_body(err: GatewayError) -> dict:
    """The JSON body for an error answered before the first byte."""
    return error_object(err.status, err.message, err.code, err.retry_after)


def error_frame(code: int, message: str, reason: str | None = None) -> bytes:
    """A failure after the first byte: the error object on a line of its own."""
    return b"\n" + dumps_text(error_object(code, message, reason)).encode() + b"\n"


def stream_error_frame(error) -> bytes:
    """An in-stream upstream failure (Responses ``error``/``response.failed``)."""
    err = error if isinstance(error, dict) else {}
    reason = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message")
    if not isinstance(message, str) or not message:
        message = f"upstream error ({reason or 'unknown'})"
    # the code the same failure has over HTTP before the first byte (one table)
    return error_frame(failures.in_stream(reason, message).status, message, reason)
