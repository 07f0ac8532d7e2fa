"""gateway.upstream.ws.fallback
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Accounts whose backend refused the WebSocket, kept on HTTP for a while and
shared by the workers through a small file in the state directory.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from ...statefiles import atomic_write, private_dir

FALLBACK_FILE = "upstream-websocket-fallback.json"


class FallbackMarks:
    """Accounts whose backend refused the WebSocket: HTTP until a time.

    Kept in ``<state_dir>/upstream-websocket-fallback.json`` so one refusal
    keeps every worker on HTTP (re-read only when the file changed: one ``stat``
    per check). A lost write between two workers costs one more refused
    upgrade, never a request."""

    def __init__(self, path: Path, seconds: float, clock=time.time):
        self.path = Path(path)
        self.seconds = seconds
        self.clock = clock
        self._marks: dict[str, float] = {}
        self._stamp = None
        self._lock = threading.Lock()

    def active(self, account_id: str) -> bool:
        until = self._marks.get(account_id)
        if until is not None and until > self.clock():
            return True
        self._reload()
        until = self._marks.get(account_id)
        return until is not None and until > self.clock()

    def mark(self, account_id: str) -> None:
        with self._lock:
            self._reload()
            now = self.clock()
            marks = {k: v for k, v in self._marks.items() if v > now}
            marks[account_id] = now + self.seconds
            self._marks = marks
            try:
                private_dir(self.path.parent)
                atomic_write(self.path, json.dumps(marks))
                self._stamp = self._stat()
            except OSError:
                pass  # this worker still remembers; the others learn on their own

    def _stat(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            data = json.loads(self.path.read_text()) if stamp else {}
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            self._marks = {k: float(v) for k, v in data.items()
                           if isinstance(k, str) and isinstance(v, (int, float))}
