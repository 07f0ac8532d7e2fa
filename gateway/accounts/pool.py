"""gateway.accounts.pool
~~~~~~~~~~~~~~~~~~~~~~~~~
The executor's only view of accounts: which ones may serve a key, their
credentials, and what happened when they were used.

Interface (kept stable for the executor):
``ranked(key, model)``, ``cooldown_until(account)``, ``credentials(account)``,
``refresh(account, stale_token)``, ``record_success(account, headers)``,
``record_failure(account, status, code, retry_at)``.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field

from . import ranking


@dataclass(frozen=True)
class Account:
    id: str
    kind: str  # "codex" (ChatGPT login) or "openai" (API key)
    label: str = ""
    weight: float = 1.0
    base_url: str | None = None
    models: tuple[str, ...] = ()  # empty: every model
    plan: str | None = None


@dataclass(frozen=True)
class Credentials:
    token: str = field(repr=False)
    account_id: str | None = None  # the chatgpt-account-id header (codex only)


class AccountPool:
    """Accounts from the config shortcuts (auth_file / openai_api_key)."""

    def __init__(self, config):
        self._cfg = config
        self._lock = threading.Lock()
        self._cooldowns: dict[str, float] = {}
        self._auth_cache: tuple[float, dict] | None = None

    # -- what exists ---------------------------------------------------------
    def accounts(self) -> list[Account]:
        out = []
        acfg = self._cfg.accounts
        if acfg.auth_file:
            data = self._read_auth_file()
            acct = ((data or {}).get("tokens") or {}).get("account_id") or "default"
            out.append(Account(id=f"codex-{acct}", kind="codex", label="auth_file"))
        if acfg.openai_api_key:
            out.append(Account(id="openai-key", kind="openai", label="openai_api_key"))
        return out

    def ranked(self, key: str, model: str) -> list[Account]:
        usable = [a for a in self.accounts() if not a.models or model in a.models]
        return ranking.rank(key, usable)

    # -- credentials ---------------------------------------------------------
    def credentials(self, account: Account) -> Credentials:
        if account.kind == "openai":
            return Credentials(self._cfg.accounts.openai_api_key)
        tokens = (self._read_auth_file() or {}).get("tokens") or {}
        return Credentials(tokens.get("access_token", ""), tokens.get("account_id"))

    def refresh(self, account: Account, stale_token: str) -> bool:
        """Try to obtain fresh credentials after a 401; False when impossible."""
        return False

    # -- health --------------------------------------------------------------
    def cooldown_until(self, account: Account) -> float | None:
        until = self._cooldowns.get(account.id)
        return until if until and until > time.time() else None

    def record_success(self, account: Account, headers) -> None:
        self._cooldowns.pop(account.id, None)

    def record_failure(self, account: Account, status: int, code: str | None,
                       retry_at: float | None) -> None:
        if status == 401:
            return
        until = retry_at or time.time() + (30 if status == 429 else 5)
        with self._lock:
            self._cooldowns[account.id] = until

    # -- helpers -------------------------------------------------------------
    def _read_auth_file(self) -> dict | None:
        path = os.path.expanduser(self._cfg.accounts.auth_file)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        cached = self._auth_cache
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            with open(path) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None
        self._auth_cache = (mtime, data)
        return data
