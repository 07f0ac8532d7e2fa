"""tests.fakes.jwt
~~~~~~~~~~~~~~~~
Unsigned JWTs shaped like the ChatGPT tokens the Codex CLI stores.

The gateway never verifies signatures (it cannot: the keys are OpenAI's), it
only reads claims such as ``exp`` and the account id, so ``alg: none`` tokens
are enough to exercise it.
"""
from __future__ import annotations

import base64
import json
import time

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
_HEADER = {"alg": "none", "typ": "JWT"}
# Some parsers insist on three non-empty segments, so the signature is a fixed word.
_SIGNATURE = "dW5zaWduZWQ"  # base64url("unsigned")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode_json(obj: dict) -> str:
    return _b64encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


def make_jwt(claims: dict) -> str:
    """Return ``header.payload.signature`` for *claims*, unsigned (``alg: none``)."""
    return f"{_encode_json(_HEADER)}.{_encode_json(claims)}.{_SIGNATURE}"


def read_claims(token: object) -> dict | None:
    """Decode the payload of a JWT, or None when *token* is not one."""
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    try:
        claims = json.loads(_b64decode(token.split(".")[1]))
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors
        return None
    return claims if isinstance(claims, dict) else None


def codex_claims(
    account_id: str,
    plan: str = "plus",
    email: str | None = None,
    exp: float | None = None,
    **extra,
) -> dict:
    """Claims of a ChatGPT id/access token for *account_id*.

    ``exp`` defaults to one hour from now; *extra* claims (e.g. ``jti``) are
    merged in so successive tokens can differ.
    """
    now = int(time.time())
    email = email or f"{account_id}@example.test"
    claims = {
        "iss": "https://auth.openai.com",
        "aud": ["https://api.openai.com/v1"],
        "sub": f"user-{account_id}",
        "email": email,
        "iat": now,
        "exp": int(now + 3600 if exp is None else exp),
        AUTH_CLAIM: {
            "chatgpt_account_id": account_id,
            "chatgpt_plan_type": plan,
            "chatgpt_user_id": f"user-{account_id}",
        },
        PROFILE_CLAIM: {"email": email, "email_verified": True},
    }
    claims.update(extra)
    return claims
