"""gateway.policy.store
~~~~~~~~~~~~~~~~~~~~~~~
Where key policies live, readable by every worker and instance:

* :class:`FilePolicies`: a JSON file beside the keys file
  (``<keys file>.policy.json``, 0600), for one host;
* :class:`RedisPolicies`: one Redis hash, when ``[state] backend = "redis"``,
  so ``keys update`` on one instance holds on all of them.

Both are read on every request at the cost of a ``stat`` (file) or one ``GET``
of a change counter (Redis), so a change holds from the next request on,
without a restart. Policies are keyed by the key's id, never by the key.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Protocol

from ..statefiles import FILE_MODE, atomic_write, private_dir
from .model import Policy

log = logging.getLogger("gateway.policy")

NO_POLICY = Policy()


class PolicyStore(Protocol):
    def get(self, key_id: str | None) -> Policy:
        """The key's policy (the empty policy when it has none)."""

    def all(self) -> dict[str, Policy]:
        """Every stored policy by key id."""

    def put(self, key_id: str, policy: Policy) -> None:
        """Store (or, for the empty policy, remove) a key's policy."""


def policy_path(keys_file: str | Path) -> Path:
    return Path(f"{keys_file}.policy.json")


class FilePolicies:
    """Policies in one JSON object ``{key id: policy}``, replaced atomically and
    re-read when its inode, size or mtime changes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._sig: tuple | None = None
        self._data: dict[str, Policy] = {}

    def _refresh(self) -> dict[str, Policy]:
        try:
            st = os.stat(self.path)
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            sig = None
        if sig != self._sig:
            self._data = self._read() if sig else {}
            self._sig = sig
        return self._data

    def _read(self) -> dict[str, Policy]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("key policies %s cannot be read (%s): keys are served without "
                        "their limits until it is fixed", self.path, exc.__class__.__name__)
            return {}
        if not isinstance(raw, dict):
            return {}
        return {k: Policy.from_dict(v) for k, v in raw.items() if isinstance(k, str)}

    def get(self, key_id: str | None) -> Policy:
        if key_id is None:
            return NO_POLICY
        return self._refresh().get(key_id, NO_POLICY)

    def all(self) -> dict[str, Policy]:
        return dict(self._refresh())

    def put(self, key_id: str, policy: Policy) -> None:
        private_dir(self.path.parent)
        with self._locked():
            self._sig = None
            data = {k: p.to_dict() for k, p in self._refresh().items()}
            if policy.empty:
                data.pop(key_id, None)
            else:
                data[key_id] = policy.to_dict()
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
            self._sig = None

    @contextlib.contextmanager
    def _locked(self):
        """Writers (``keys`` commands) take turns on a lock file beside it."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


class RedisPolicies:
    """Policies in the hash ``<prefix>policies`` (key id → policy JSON) with the
    change counter ``<prefix>policies:ver``; each process keeps the last copy
    and re-reads it when the counter moved. While Redis is unreachable the last
    copy is served."""

    def __init__(self, link, prefix: str):
        from ..state import redis as state_redis  # the redis package only in Redis mode

        self.link = link
        self.key = prefix + "policies"
        self._bump = state_redis.bump
        self._snap = state_redis._Snapshot(link, self.key, Policy.from_dict)

    def get(self, key_id: str | None) -> Policy:
        if key_id is None:
            return NO_POLICY
        return self._snap.read().get(key_id, NO_POLICY)

    def all(self) -> dict[str, Policy]:
        return dict(self._snap.read(strict=True))

    def put(self, key_id: str, policy: Policy) -> None:
        def write(r):
            pipe = r.pipeline(transaction=True)
            if policy.empty:
                pipe.hdel(self.key, key_id)
            else:
                pipe.hset(self.key, key_id, json.dumps(policy.to_dict(), sort_keys=True))
            self._bump(pipe, self.key + ":ver")
            pipe.execute()
        self.link.run(write)


def open_policies(cfg, link=None) -> PolicyStore:
    """The policy store of the configured state backend (*link*: an open Redis link)."""
    if cfg.state.kind == "redis":
        if link is None:
            from ..state import open_state
            link = open_state(cfg).link
        return RedisPolicies(link, cfg.state.key_prefix)
    return FilePolicies(policy_path(cfg.keys_file))
