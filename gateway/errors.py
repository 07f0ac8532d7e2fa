"""gateway.errors
~~~~~~~~~~~~~~~~~
The gateway's own exceptions.

``GatewayError`` is what the client is told: a status, a message, a code. Each
dialect renders it in its own shape (``gateway.dialects.*.errors``).
``TransportError`` and its kinds are what the upstream transport raises instead
of the HTTP client's exceptions, so no other module needs to know ``requests``
or ``urllib3``; ``gateway.failures`` turns them into ``GatewayError``.
"""
from __future__ import annotations

from dataclasses import dataclass

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    426: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    503: "service_unavailable",
}


@dataclass
class GatewayError(Exception):
    """An error with an HTTP status and an OpenAI-style body."""

    status: int
    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None
    retry_after: int | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)
        if self.type is None:
            self.type = _TYPE_BY_STATUS.get(
                self.status, "server_error" if self.status >= 500 else "invalid_request_error"
            )

    def body(self) -> dict:
        """The OpenAI error object (Responses and Chat Completions share it)."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, code=code or "invalid_request", param=param)


class TransportError(Exception):
    """The upstream could not be talked to; ``code`` names the kind."""

    code = "upstream_error"
    message = "The upstream request failed."

    def __init__(self, detail: str = ""):
        super().__init__(detail or self.message)
        self.detail = detail


class UpstreamUnreachable(TransportError):
    code = "upstream_unreachable"
    message = "Cannot reach the upstream (connection failed or refused)."


class UpstreamTimeout(TransportError):
    code = "upstream_timeout"
    message = "The upstream stopped sending data (read timeout)."


class UpstreamConnectTimeout(UpstreamTimeout):
    message = "Timed out connecting to the upstream."


class UpstreamBroken(TransportError):
    code = "upstream_connection_lost"
    message = "The upstream connection broke mid-stream."
