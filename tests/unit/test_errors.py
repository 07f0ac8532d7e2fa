"""GatewayError: what the client is told."""
from __future__ import annotations

from gateway.errors import GatewayError


def test_error_body_shape():
    err = GatewayError(429, "slow down", code="x", retry_after=5)
    assert err.body() == {"error": {"message": "slow down", "type": "rate_limit_error",
                                    "param": None, "code": "x"}}
    assert err.headers() == {"Retry-After": "5"}
