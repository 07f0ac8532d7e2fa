"""gateway.state.tokens
~~~~~~~~~~~~~~~~~~~~~~~~
Reading claims out of ChatGPT tokens.

The gateway only needs facts the tokens carry about themselves: when the
access token expires, and which ChatGPT account and plan the id token names.
Signatures are never verified (the keys are OpenAI's) and claims are never
used to authorise anything: the upstream decides that.
"""
from __future__ import annotations

import base64
import functools
import json
import time

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"


def claims(token) -> dict:
    """The payload of a JWT string, or *token* itself when it is already a
    parsed claims object (some Codex CLI versions store the id token so).
    Anything unreadable gives ``{}``."""
    if isinstance(token, dict):
        return token
    if not isinstance(token, str) or token.count(".") != 2:
        return {}
    return _payload(token)


@functools.lru_cache(maxsize=64)
def _payload(token: str) -> dict:
    """A JWT's decoded payload, kept for the next asker: every request asks for its
    account's token's expiry (~12 µs to decode each time). Shared: never mutated."""
    payload = token.split(".")[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:  # binascii.Error, UnicodeDecodeError, JSONDecodeError
        return {}
    return data if isinstance(data, dict) else {}


def expiry(token) -> float | None:
    """The ``exp`` claim (epoch seconds), or None when the token has none."""
    exp = claims(token).get("exp")
    return float(exp) if _number(exp) else None


def expires_within(token, margin: float, now: float | None = None) -> bool:
    """True when the token expires within *margin* seconds (unknown: False,
    so a token without ``exp`` is refreshed only after a 401). The margin is
    at most half the token's lifetime, so an issuer handing out tokens shorter
    than the margin does not get a refresh on every request."""
    data = claims(token)
    exp, iat = data.get("exp"), data.get("iat")
    if not _number(exp):
        return False
    if _number(iat) and exp > iat:
        margin = min(margin, (exp - iat) / 2)
    return exp - (time.time() if now is None else now) <= margin


def identity(id_token) -> dict:
    """``account_id``, ``plan`` and ``email`` named by an id token (None when absent)."""
    data = claims(id_token)
    auth = data.get(AUTH_CLAIM) if isinstance(data.get(AUTH_CLAIM), dict) else {}
    profile = data.get(PROFILE_CLAIM) if isinstance(data.get(PROFILE_CLAIM), dict) else {}
    email = data.get("email") or profile.get("email")
    return {
        "account_id": _str(auth.get("chatgpt_account_id")),
        "plan": _str(auth.get("chatgpt_plan_type")),
        "email": _str(email),
    }


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str(value) -> str | None:
    return value if isinstance(value, str) and value else None
