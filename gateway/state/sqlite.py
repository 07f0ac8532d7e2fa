"""gateway.state.sqlite
~~~~~~~~~~~~~~~~~~~~~~~~
The embedded default, unchanged: account files and the auth_file shortcut
(:class:`~gateway.accounts.store.Store`), health in ``health.sqlite``
(:class:`~gateway.accounts.health.SQLiteHealth`), the refresh lock a
``flock`` per account. Everything one host's workers share, nothing more.
"""
from __future__ import annotations

from ..accounts.health import SQLiteHealth
from ..accounts.store import Store


def open_sqlite(cfg):
    """``(store, health)`` in ``accounts.state_dir``."""
    return (Store(cfg.state_dir, cfg.accounts.auth_file),
            SQLiteHealth(cfg.state_dir / "health.sqlite"))
