"""gateway.state
~~~~~~~~~~~~~~~~
Where the state that workers (and instances) share lives, chosen by
``[state] backend``:

* ``sqlite`` (default): account files (:mod:`.files`) and health in SQLite
  (:mod:`.sqlite_health`) in the state dir of one host;
* ``redis``: :mod:`.redis`, one Redis that several instances share.

Either way the account pool sees the same two objects (:mod:`.base`): an
:class:`AccountStore` (account records and their refresh lock) and a
:class:`HealthStore`. Records are built by :mod:`.records`; nothing here
imports the accounts package.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import AccountStore, HealthStore
from .errors import StateUnavailable
from .files import FileStore
from .sqlite_health import SQLiteHealth

__all__ = ["AccountStore", "Backend", "HealthStore", "StateUnavailable", "open_state"]


@dataclass
class Backend:
    name: str          # "sqlite" | "redis"
    store: AccountStore
    health: HealthStore
    link: object = None  # the Redis link (None for sqlite)

    def reachable(self) -> bool:
        """Whether this process last reached the store (no I/O; sqlite: always)."""
        return self.link is None or self.link.reachable()

    def status(self) -> dict:
        """What /healthz reports: the backend and whether it answers (no secrets)."""
        if self.link is None:
            return {"backend": self.name, "ok": True}
        return self.link.status()

    def check(self) -> None:
        """Raise StateUnavailable unless the store answers now (for the CLI)."""
        if self.link is not None:
            self.link.run(lambda r: r.ping())


def open_state(cfg, backend: str | None = None) -> Backend:
    """The configured backend (or *backend*: ``state migrate`` opens both)."""
    name = backend or cfg.state.kind
    if name == "redis":
        from .redis import open_redis  # the redis package only in Redis mode
        store, health, link = open_redis(cfg)
        return Backend("redis", store, health, link)
    return Backend("sqlite", FileStore(cfg.state_dir, cfg.accounts.auth_file),
                   SQLiteHealth(cfg.state_dir / "health.sqlite"))
