"""An upstream HTTP error read into an UpstreamFailure: its shapes and retry hints."""
from __future__ import annotations

import time

import pytest

from gateway.failures import from_http as parse_failure


@pytest.mark.parametrize("status,body,headers,expect", [
    (400, b'{"detail":"Unsupported parameter: prompt_cache_retention"}', {},
     dict(unsupported_param="prompt_cache_retention", message="Unsupported parameter: prompt_cache_retention")),
    (429, b'{"error":{"type":"usage_limit_reached","message":"limit","resets_at":4102444800}}', {},
     dict(code="usage_limit_reached", retry_at=4102444800.0)),
    (429, b'{"error":{"type":"rate_limit_exceeded","message":"try again in 1.5s"}}', {},
     dict(code=None, type="rate_limit_exceeded")),
    (500, b"<html>oops</html>", {}, dict(message="<html>oops</html>")),
    (401, b'{"error":{"message":"expired","code":"token_expired"}}', {}, dict(code="token_expired")),
])
def test_parse_failure_shapes(status, body, headers, expect):
    f = parse_failure(status, body, headers)
    for k, v in expect.items():
        assert getattr(f, k) == v


def test_retry_hints():
    now = time.time()
    assert abs(parse_failure(429, b'{"error":{"message":"x","resets_in_seconds":60}}', {}).retry_at - now - 60) < 2
    assert abs(parse_failure(429, b'{}', {"Retry-After": "7"}).retry_at - now - 7) < 2
    assert abs(parse_failure(429, b'{"error":{"message":"try again in 1.5s"}}', {}).retry_at - now - 1.5) < 1
