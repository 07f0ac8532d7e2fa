"""gateway.errors
~~~~~~~~~~~~~~~~~
One error type for everything the gateway refuses or the upstream fails.

It renders as OpenAI-shaped JSON before the first byte of a response and as
an SSE error event after it, so no path has to invent its own error format.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
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
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)
        if self.type is None:
            self.type = _TYPE_BY_STATUS.get(
                self.status, "server_error" if self.status >= 500 else "invalid_request_error"
            )

    def body(self) -> dict:
        err = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        err.update(self.extra)
        return {"error": err}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}

    def to_json(self) -> bytes:
        return json.dumps(self.body()).encode()


def bad_request(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, code=code or "invalid_request", param=param)
