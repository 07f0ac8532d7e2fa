"""gateway.state.files
~~~~~~~~~~~~~~~~~~~~~
The SQLite backend's account store (its health is :mod:`.sqlite_health`):
``<state_dir>/accounts/<id>.json``, one file per account, plus the
``accounts.auth_file`` shortcut (a Codex CLI auth.json used in place).

Every write is a temp file in the same directory, fsync, ``os.replace``, so a
worker reading concurrently sees the old or the new file, never half of one;
files are 0600 and their contents never reach a log or an exception. Reads are
cached on (inode, mtime, size), so polling a file per request costs a stat.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
from datetime import datetime
from pathlib import Path

from ..statefiles import atomic_write, private_dir
from .records import AUTH_FILE_SOURCE, StoreError, codex_record, from_codex_auth, safe_id


def atomic_write_json(path: Path, data: dict) -> None:
    """Replace *path* with *data* (0600) so readers never see a partial file."""
    def fill(fh) -> None:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")

    atomic_write(path, fill)


VERSION_SETTLE_NS = 50_000_000  # a directory changed this recently is scanned again


class FileStore:
    """:class:`~.base.AccountStore` on the account files of one state dir (and
    the optional auth_file)."""

    def __init__(self, state_dir, auth_file: str = ""):
        self.dir = Path(state_dir) / "accounts"
        self.locks = Path(state_dir) / "locks"
        self.auth_file = Path(os.path.expanduser(auth_file)) if auth_file else None
        self._cache: dict[Path, tuple[tuple, dict | None]] = {}
        self._derived: tuple[dict, dict | None] | None = None  # (auth_file data, its record)
        self._mutex = threading.Lock()
        self._paths: dict[str, Path] = {}  # account id -> its file (asked per request)

    def path(self, account_id: str) -> Path:
        path = self._paths.get(account_id)
        if path is None:
            path = self._paths[account_id] = self.dir / f"{safe_id(account_id)}.json"
        return path

    def records(self) -> list[dict]:
        """Every account record; a store file wins over the auth_file for one id."""
        out: dict[str, dict] = {}
        if self.dir.is_dir():
            for entry in sorted(os.scandir(self.dir), key=lambda e: e.name):
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    rec = self._read(Path(entry.path))
                    if rec and rec.get("kind") in ("codex", "openai"):
                        out.setdefault(rec["id"], rec)
        shortcut = self._auth_file_record()
        if shortcut:
            out.setdefault(shortcut["id"], shortcut)
        return list(out.values())

    def version(self) -> tuple | None:
        """A value that changes whenever :meth:`records` may have (an account file
        written, added or removed: each is a rename in the directory; the
        auth_file rewritten), for one stat or two instead of a scan; None while a
        change may be too recent to show (file times tick in milliseconds)."""
        sigs = []
        for path in (self.dir, self.auth_file):
            try:
                st = os.stat(path) if path else None
            except OSError:
                st = None
            if st is not None and time.time_ns() - st.st_mtime_ns < VERSION_SETTLE_NS:
                return None
            sigs.append(st and (st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(sigs)

    def load(self, account_id: str) -> dict | None:
        """The current record of one account (re-read when its file changed)."""
        rec = self._read(self.path(account_id))
        if rec:
            return rec
        shortcut = self._auth_file_record()
        return shortcut if shortcut and shortcut["id"] == account_id else None

    def save(self, rec: dict) -> None:
        """Write a record back where it came from (a store file or the auth_file)."""
        if rec.get("source") == AUTH_FILE_SOURCE and self.auth_file:
            data = self._read_json(self.auth_file) or {}
            data["tokens"] = {k: rec.get(k) for k in
                              ("id_token", "access_token", "refresh_token", "account_id")}
            data["last_refresh"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            atomic_write_json(self.auth_file, data)
            return
        private_dir(self.dir.parent)
        private_dir(self.dir)
        atomic_write_json(self.path(rec["id"]), {k: v for k, v in rec.items() if k != "source"})

    def remove(self, account_id: str) -> bool:
        try:
            self.path(account_id).unlink()
        except FileNotFoundError:
            return False
        return True

    @contextlib.contextmanager
    def lock(self, account_id: str, timeout: float = 60.0):
        """Exclusive ``flock`` on ``locks/<id>.lock``: one refresher across every
        process and thread (each call opens its own file description)."""
        private_dir(self.locks.parent)
        private_dir(self.locks)
        fd = os.open(self.locks / f"{safe_id(account_id)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"account {account_id} is locked by another refresh")
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # closing the description releases the lock

    # -- helpers -------------------------------------------------------------
    def _auth_file_record(self) -> dict | None:
        """The auth_file's account, derived once per version of the file: every
        request asks for it, and deriving decodes three JWTs (~35 µs)."""
        data = self._read(self.auth_file, raw=True) if self.auth_file else None
        if not data:
            return None
        derived = self._derived
        if derived is not None and derived[0] is data:
            return derived[1]
        try:
            rec = codex_record(from_codex_auth(data), label=AUTH_FILE_SOURCE)
        except StoreError:
            rec = None
        else:
            rec["source"] = AUTH_FILE_SOURCE
            rec["last_refresh"] = _epoch(data.get("last_refresh"))
        self._derived = (data, rec)  # *data* is the read cache's object for this version
        return rec

    def _read(self, path: Path, raw: bool = False) -> dict | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached and cached[0] == sig:
            return cached[1]
        data = self._read_json(path)
        if data is not None and not raw:
            data["id"] = path.stem  # the file name is the id, even after a manual rename
        with self._mutex:
            self._cache[path] = (sig, data)
        return data

    @staticmethod
    def _read_json(path: Path) -> dict | None:
        try:
            with open(path) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _epoch(value) -> float | None:
    """An RFC 3339 ``last_refresh`` (Codex CLI) as epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    value = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))  # Rust writes ns
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
