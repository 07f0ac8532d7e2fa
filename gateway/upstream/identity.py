"""gateway.upstream.identity
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The Codex client identity the backend sees for requests that do not come from
Codex CLI: ``originator``, ``User-Agent`` and ``version``, shaped like a current
Codex CLI's and with nothing that marks the request as proxied.

The backend gates new models by client version and may treat other fingerprints
differently, so the version is the configured one (``upstream.client_version``)
or the newest seen from a real Codex CLI client, whichever is higher. That
newest version is kept in the state dir (``client_version``) so every worker on
the host converges on it. Codex CLI's own requests keep their own headers.
"""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from ..models import parse_version

_CODEX_UA = re.compile(r"^(codex[\w.-]*)/(\d+\.\d+\.\d+)\b")
RECHECK_SECONDS = 5.0


def codex_client_version(headers) -> str | None:
    """The version of a real Codex CLI client from its headers (``originator`` and a
    ``User-Agent`` that starts with ``<originator>/<version>``), else None."""
    originator = headers.get("originator")
    match = _CODEX_UA.match(headers.get("User-Agent") or "")
    if not originator or match is None or match.group(1) != originator:
        return None
    return match.group(2)


def render_user_agent(template: str, originator: str, version: str) -> str:
    return template.format(originator=originator, version=version)


class ClientIdentity:
    """The identity sent for non-Codex clients; *state_file* remembers the newest
    Codex CLI version seen (None: memory only)."""

    def __init__(self, ucfg, state_file: Path | None = None):
        self.originator = ucfg.originator
        self.template = ucfg.user_agent
        self._configured = ucfg.client_version
        self._seen = ucfg.client_version
        self._file = state_file
        self._checked = 0.0
        self._lock = threading.Lock()
        self._load()

    def version(self) -> str:
        """The newest of the configured version and those seen from Codex CLI."""
        now = time.monotonic()
        if self._file is not None and now - self._checked > RECHECK_SECONDS:
            self._checked = now
            self._load()
        return self._seen

    def headers(self) -> dict[str, str]:
        version = self.version()
        return {"originator": self.originator, "version": version,
                "User-Agent": render_user_agent(self.template, self.originator, version)}

    def observe(self, client_headers) -> bool:
        """Note a request's client; True when it is a real Codex CLI (its headers stay)."""
        version = codex_client_version(client_headers)
        if version is None:
            return False
        if _newer(version, self._seen):
            with self._lock:
                if _newer(version, self._seen):
                    self._seen = version
                    self._save(version)
        return True

    def _load(self) -> None:
        if self._file is None:
            return
        try:
            stored = self._file.read_text().strip()
        except OSError:
            return
        if parse_version(stored) and _newer(stored, self._seen):
            self._seen = stored

    def _save(self, version: str) -> None:
        if self._file is None:
            return
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._file.with_name(f".{self._file.name}.{os.getpid()}")
            tmp.write_text(version + "\n")
            os.replace(tmp, self._file)
        except OSError:
            pass  # memory still has it; the file only lets other workers converge


def identity_for(config) -> ClientIdentity:
    """The worker's identity, sharing the newest seen version through the state dir."""
    return ClientIdentity(config.upstream, config.state_dir / "client_version")


def _newer(a: str, b: str) -> bool:
    pa, pb = parse_version(a), parse_version(b)
    return pa is not None and (pb is None or pa > pb)
