"""gateway.dialects.messages.signature
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Carry a Responses ``reasoning`` item through a Claude ``thinking`` signature.

Neither a Messages request nor its answer has a place for a response id, but
Claude clients echo every ``thinking`` block verbatim, signature included,
also after a restart (``--continue`` replays the transcript). So the gateway
puts the item's ``id`` and ``encrypted_content`` in the signature it issues
and turns the block back into a ``reasoning`` item on the next turn: the
model keeps its reasoning across tool loops and turns with ``store: false``.

The format is ``cgw1.`` + URL-safe base64 (no padding) of compact JSON
``{"ec": encrypted_content, "id": item_id}``. It is deterministic (the same
item always gives the same signature, so a replayed history stays byte
stable) and holds nothing secret: ``encrypted_content`` is already opaque
to everyone but the upstream. The prefix lets the gateway tell its own
signatures from Anthropic's (or anyone else's), which it must drop.
"""
from __future__ import annotations

import base64
import binascii
import json

PREFIX = "cgw1."


def encode_signature(item: dict) -> str:
    """A reasoning item (``id``, ``encrypted_content``) -> a signature string."""
    payload = {}
    if isinstance(item.get("encrypted_content"), str):
        payload["ec"] = item["encrypted_content"]
    if isinstance(item.get("id"), str):
        payload["id"] = item["id"]
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_signature(signature) -> dict | None:
    """A signature this gateway issued -> ``{"id"?, "encrypted_content"?}``.

    None for anything else: other issuers' signatures, garbage, or a payload
    that is not the shape :func:`encode_signature` writes.
    """
    if not isinstance(signature, str) or not signature.startswith(PREFIX):
        return None
    text = signature[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or not payload:
        return None
    out = {}
    for short, name in (("id", "id"), ("ec", "encrypted_content")):
        value = payload.get(short)
        if value is not None:
            if not isinstance(value, str):
                return None
            out[name] = value
    return out or None
