"""gateway.auth
~~~~~~~~~~~~~~
Client API keys: constant-time checks, and a non-secret id per key.

The id (``key-<12 hex of sha256>``) is what continuity scopes on and what logs
show; the raw key never leaves this module.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .errors import GatewayError


def key_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def new_key() -> str:
    return "cgw-" + secrets.token_urlsafe(32)


class ClientKeys:
    """The accepted keys: from config plus a keys file that is re-read when it changes."""

    def __init__(self, keys: tuple[str, ...] = (), keys_file: str | Path | None = None):
        self._static = [k for k in keys if k]
        self._file = Path(keys_file) if keys_file else None
        self._mtime: float | None = None
        self._entries: list[tuple[bytes, str]] = []
        self._load_static()

    def _load_static(self) -> None:
        self._entries = [(_digest(k), key_id(k)) for k in self._static]

    def _refresh(self) -> None:
        if self._file is None:
            return
        try:
            mtime = self._file.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        self._load_static()
        if mtime is None:
            return
        for line in self._file.read_text().splitlines():
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                key = parts[-1]
                self._entries.append((_digest(key), key_id(key)))

    @property
    def enabled(self) -> bool:
        self._refresh()
        return bool(self._entries)

    def check(self, authorization: str | None, forwarded: bool = False) -> str | None:
        """Return the principal id for a request, or None when keys are off.

        Raises a 401 GatewayError when keys are on and the header is missing or
        wrong. Every stored digest is compared, so timing does not reveal which.
        """
        self._refresh()
        if not self._entries:
            if forwarded:
                raise GatewayError(
                    401, "This gateway has no client keys, so it only serves clients on its own "
                    "host, and this request came through a proxy. Create a key with "
                    "`codex-gateway keys create` and send it as 'Authorization: Bearer <key>'.",
                    code="client_keys_required")
            return None
        if not authorization:
            raise GatewayError(401, "Missing API key: send 'Authorization: Bearer <key>'.",
                               code="missing_api_key")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayError(401, "Malformed Authorization header: expected 'Bearer <key>'.",
                               code="invalid_api_key")
        digest = _digest(token.strip())
        found = None
        for stored, ident in self._entries:
            if hmac.compare_digest(stored, digest):
                found = ident
        if found is None:
            raise GatewayError(401, "Incorrect API key provided.", code="invalid_api_key")
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def append_key(path: Path, name: str, key: str) -> None:
    """Add a key to the keys file (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(f"{name} {key}\n")
