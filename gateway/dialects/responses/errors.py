"""gateway.dialects.responses.errors
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A ``GatewayError`` in OpenAI's shape (Responses and Chat Completions share it):
``{"error": {"message", "type", "param", "code"}}`` before the first byte, an
``event: error`` frame after it.
"""
from __future__ import annotations

from ...errors import GatewayError
from ...sse import encode


def error_body(err: GatewayError) -> dict:
    return err.body()


def error_frame(err: GatewayError) -> bytes:
    return encode({"type": "error", "code": err.code, "message": err.message,
                   "param": err.param}, "error")
