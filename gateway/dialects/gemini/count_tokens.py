"""gateway.dialects.gemini.count_tokens
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``:countTokens``: an estimate, the Messages dialect's rule (UTF-8 bytes of what
the model reads / 4, plus a flat cost per item and attachment; see
:mod:`gateway.dialects.messages.count_tokens`) applied to the request exactly
as ``:generateContent`` would send it.

The body is ``{"contents": [...]}`` or ``{"generateContentRequest": {...}}``
(a whole request: system instruction and tools counted too).
"""
from __future__ import annotations

from gateway.errors import bad_request

from ..messages.count_tokens import estimate_input_tokens
from .request import fields, translate_request


def count_tokens(body, model: str) -> dict:
    """The ``:countTokens`` answer for a body and the model in the path."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    inner = fields(body).get("generateContentRequest")
    if inner is not None and not isinstance(inner, dict):
        raise bad_request("'generateContentRequest' must be an object.",
                          param="generateContentRequest")
    total = estimate_input_tokens(translate_request(inner or body, model).responses)
    return {"totalTokens": total,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
