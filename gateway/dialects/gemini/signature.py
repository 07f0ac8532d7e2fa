"""gateway.dialects.gemini.signature
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A Responses ``reasoning`` item in a Gemini ``thoughtSignature``.

The payload is the Messages dialect's signature (:mod:`gateway.dialects.messages.signature`:
the item's id and encrypted content, deterministic, marked as the gateway's),
in standard base64: Google's SDKs treat ``thoughtSignature`` as bytes sent as
base64 (google-genai refuses a part whose signature is not base64, and sends
back ``base64(bytes)``), so only canonical base64 survives their round trip
byte for byte.
"""
from __future__ import annotations

import base64
import binascii

from ..messages.signature import decode_signature, encode_signature


def encode_thought_signature(item: dict) -> str | None:
    """A reasoning item -> its thoughtSignature; None without encrypted content."""
    if not isinstance(item.get("encrypted_content"), str):
        return None
    return base64.b64encode(encode_signature(item).encode()).decode("ascii")


def decode_thought_signature(signature) -> dict | None:
    """A thoughtSignature this gateway issued -> ``{"id"?, "encrypted_content"}``, else None."""
    if not isinstance(signature, str) or not signature:
        return None
    try:
        inner = base64.b64decode(signature, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    return decode_signature(inner)
