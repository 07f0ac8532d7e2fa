"""gateway.continuity
~~~~~~~~~~~~~~~~~~~~~~
Resolve one continuity key per conversation and apply it everywhere.

The upstream reuses its prompt cache only when every turn arrives with the
same account, the same body ``prompt_cache_key`` and the same session header.
This module is the single place that decides that value. It is pure: no
process-local maps, no randomness, no clocks; every worker and every restart
computes the same key for the same request (the tests in
tests/unit/test_continuity.py pin the keys).
"""
from __future__ import annotations

import functools
import hashlib
import json
import uuid
from dataclasses import dataclass

from .config import ContinuityConfig
from .models import MODEL_SUFFIX as _MODEL_SUFFIX  # the one effort-suffix definition

ANONYMOUS = "anonymous"
_EXPLICIT_MAX = 64  # what an unscoped explicit key may be before it is hashed
_HEAD_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps builds one per call


@dataclass(frozen=True)
class Continuity:
    """The resolved key and the label of the signal it came from."""

    key: str | None
    source: str

    @functools.cached_property
    def short_hash(self) -> str:
        """A log-safe fingerprint of the key (never the raw inputs)."""
        return hashlib.sha256((self.key or "").encode()).hexdigest()[:10]


def resolve(
    body: dict,
    headers,
    principal: str | None,
    cfg: ContinuityConfig,
    session: str | None = None,
) -> Continuity:
    """Walk the configured chain; the first non-blank signal wins.

    ``headers`` is any case-insensitive mapping of the client's headers;
    ``body`` is the *normalised* Responses request, so every dialect resolves
    the same way. ``session`` is a session signal a dialect found in its own
    fields (Claude Code's session id): it ranks as ``client_session``, before
    the generic session headers. When the chain reaches ``account`` the key is not known
    until an account is chosen: the result then has ``key=None`` and the
    executor calls :func:`bind_account`.
    """
    scope = principal or ANONYMOUS
    ns = _namespace(cfg.namespace)
    limit = cfg.max_signal_length
    for source in cfg.chain:
        if source == "prompt_cache_key":
            value = _clean(body.get("prompt_cache_key"), limit)
            if value is not None:
                if cfg.scope_explicit_key or len(value) > _EXPLICIT_MAX:
                    return Continuity(_derive(ns, source, scope, value), source)
                return Continuity(value, source)
        elif source == "client_session":
            value = _clean(session, limit)
            if value is not None:
                return Continuity(_derive(ns, source, scope, value), source)
            for name in cfg.session_headers:
                value = _clean(headers.get(name), limit)
                if value is not None:
                    return Continuity(_derive(ns, source, scope, value), source)
        elif source == "idempotency_key":
            value = _clean(headers.get("idempotency-key"), limit)
            if value is not None:
                return Continuity(_derive(ns, source, scope, value), source)
        elif source == "conversation":
            value = conversation_fingerprint(body)
            if value is not None:
                return Continuity(_derive(ns, source, scope, value), source)
        elif source == "client_principal":
            if principal:
                return Continuity(_derive(ns, source, scope, principal), source)
        elif source == "account":
            return Continuity(None, "account")
    return Continuity(None, "account")


def bind_account(cont: Continuity, account_id: str, principal: str | None,
                 cfg: ContinuityConfig) -> Continuity:
    """Finish an ``account``-sourced continuity once the account is known."""
    if cont.key is not None:
        return cont
    ns = _namespace(cfg.namespace)
    return Continuity(_derive(ns, "account", principal or ANONYMOUS, account_id), "account")


def apply(body: dict, headers: dict, cont: Continuity, session_headers) -> None:
    """Write the one value into body ``prompt_cache_key`` and every session header.

    Header and body can never disagree: any client value under those header
    names is overwritten (it was only an input to :func:`resolve`).
    """
    if cont.key is None:
        return
    body["prompt_cache_key"] = cont.key
    lowered = {h.lower() for h in session_headers}
    for name in [h for h in headers if h.lower() in lowered]:
        del headers[name]
    for name in session_headers:
        headers[name] = cont.key


def conversation_fingerprint(body: dict) -> str | None:
    """Hash the conversation's stable head: instructions, system/developer text
    and the first user message (text and image references), plus the model family.

    Clients resend the whole history every turn, so this head stays fixed for a
    conversation and differs between conversations.
    """
    head: list = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        head.append(["instructions", [instructions]])
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    first_user = None
    if isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                continue
            role = item.get("role")
            if item.get("type", "message") != "message":
                continue
            if role in ("system", "developer"):
                head.append(["instructions", _content_signature(item.get("content"))])
            elif role == "user":
                first_user = _content_signature(item.get("content"))
                break
    if first_user is None or not any(first_user):
        return None
    head.append(["user", first_user])
    head.append(["model", model_family(body.get("model"))])
    return hashlib.sha256(_HEAD_JSON.encode(head).encode()).hexdigest()


def model_family(model) -> str:
    if not isinstance(model, str):
        return ""
    return _MODEL_SUFFIX.sub("", model.strip().lower())


def _content_signature(content) -> list:
    """Text parts as text, images and files by reference; other parts ignored."""
    if isinstance(content, str):
        return [content]
    out = []
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind in ("input_text", "output_text", "text"):
                out.append(str(part.get("text", "")))
            elif kind in ("input_image", "image_url"):
                ref = part.get("image_url") or part.get("file_id") or ""
                if isinstance(ref, dict):
                    ref = ref.get("url", "")
                out.append("image:" + hashlib.sha256(str(ref).encode()).hexdigest())
            elif kind in ("input_file", "file"):
                ref = part.get("file_id") or part.get("filename") or part.get("file_data") or ""
                out.append("file:" + hashlib.sha256(str(ref).encode()).hexdigest())
    return out


def _clean(value, limit: int) -> str | None:
    """Strip, treat blank as absent, and bound the length (long values are hashed)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


@functools.lru_cache(maxsize=8)
def _namespace(text: str) -> bytes:
    """The namespace UUID's bytes (parsed once, not per request)."""
    return uuid.UUID(text).bytes


def _derive(ns: bytes, source: str, scope: str, value: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=ns), f"{source}:{scope}:{value}"))``, the namespace
    parsed once: uuid5's own steps (SHA-1, then ``UUID(..., version=5)`` sets the
    version and variant bits)."""
    digest = hashlib.sha1(ns + f"{source}:{scope}:{value}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))
