"""gateway.dialects.chat.errors
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Chat Completions errors: OpenAI's JSON shape before the first byte (the same as
Responses), a ``data: {"error": …}`` chunk with no ``[DONE]`` after it.
"""
from __future__ import annotations

from ...errors import GatewayError
from ...sse import encode
from ..responses.errors import error_body

__all__ = ["error_body", "error_frame"]


def error_frame(err: GatewayError) -> bytes:
    return encode({"error": {"message": err.message, "type": err.type, "code": err.code}})
