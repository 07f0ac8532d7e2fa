"""gateway.state.records
~~~~~~~~~~~~~~~~~~~~~~~~
An account record as every store keeps it: a dict with ``kind`` (``codex``
or ``openai``), ``id`` and the credentials. Built here, from tokens (a login,
a Codex CLI auth.json) or an API key; stored by :mod:`.files` or :mod:`.redis`.
"""
from __future__ import annotations

import hashlib
import re
import time

from . import tokens

AUTH_FILE_SOURCE = "auth_file"  # record["source"] of the auth_file shortcut


class StoreError(ValueError):
    """An account file that cannot be read, written or understood."""


# -- ids and records ---------------------------------------------------------
def safe_id(text: str) -> str:
    """A filename-safe account id (no slashes, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "-", text).strip(".-")[:120] or "account"


def codex_record(toks: dict, **extra) -> dict:
    """A ``codex`` record from ``{access_token, refresh_token, id_token[, account_id]}``;
    account id, plan and email come from the id token's claims."""
    who = tokens.identity(toks.get("id_token"))
    account_id = who["account_id"] or toks.get("account_id")
    if not account_id or not toks.get("access_token"):
        raise StoreError("the tokens carry no ChatGPT account id or no access token")
    rec = {"kind": "codex", "id": safe_id(f"codex-{account_id}"), "account_id": account_id,
           "plan": who["plan"], "email": who["email"],
           "access_token": toks["access_token"], "refresh_token": toks.get("refresh_token"),
           "id_token": toks.get("id_token"), "expires_at": tokens.expiry(toks["access_token"]),
           "last_refresh": time.time()}
    rec.update({k: v for k, v in extra.items() if v not in (None, "", ())})
    return rec


def openai_record(key: str, base_url: str | None = None, label: str | None = None,
                  **extra) -> dict:
    """An ``openai`` (API key) record; the id is the label or 8 hex of the key's hash."""
    tag = label or hashlib.sha256(key.encode()).hexdigest()[:8]
    rec = {"kind": "openai", "id": safe_id(f"openai-{tag}"), "api_key": key,
           "base_url": base_url, "label": label}
    rec.update({k: v for k, v in extra.items() if v not in (None, "", ())})
    return {k: v for k, v in rec.items() if v is not None}


def from_codex_auth(data: dict) -> dict:
    """Tokens of a Codex CLI auth.json (``{tokens: {...}}``, or the tokens flat)."""
    toks = data.get("tokens") if isinstance(data.get("tokens"), dict) else data
    if not isinstance(toks, dict) or not toks.get("access_token"):
        raise StoreError("not a Codex CLI auth.json with ChatGPT tokens")
    return {k: toks.get(k) for k in ("access_token", "refresh_token", "id_token", "account_id")}
