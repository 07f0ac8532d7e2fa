"""gateway.state.migrate
~~~~~~~~~~~~~~~~~~~~~~~~~
``codex-gateway state migrate --to redis``: copy an embedded state (account
files, the auth_file shortcut, health.sqlite) into the configured Redis.

Run it with the embedded gateway stopped: a refresh after the copy would
rotate the refresh token in the file only, and the copy in Redis would then
be refused. An account already in Redis is kept (the Redis copy may be newer:
another instance may have refreshed it) unless ``overwrite`` is given.
Client keys are not copied: they stay in each instance's keys file
(docs/deploy/several-instances.md, says why).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import open_state


@dataclass
class Report:
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)     # already in Redis, left as it was
    health: list[str] = field(default_factory=list)   # health rows copied


def to_redis(cfg, overwrite: bool = False) -> Report:
    """Copy the embedded state of *cfg* into ``cfg.state.redis_url``."""
    src = open_state(cfg, "sqlite")
    dst = open_state(cfg, "redis")
    dst.check()
    report = Report()
    existing = {r["id"] for r in dst.store.records()}
    snap = src.health.snapshot()
    for rec in src.store.records():
        ident = rec["id"]
        if ident in existing and not overwrite:
            report.kept.append(ident)
            continue
        dst.store.save(rec)  # the auth_file shortcut becomes a record of its own
        report.copied.append(ident)
        row = snap.get(ident)
        if row:
            _copy_health(dst.health, ident, row)
            report.health.append(ident)
    return report


def _copy_health(health, ident: str, row: dict) -> None:
    """Recreate a health row through the store's own changes (no raw writes)."""
    health.forget(ident)
    if row.get("needs_login"):
        health.mark_needs_login(ident, row.get("login_reason") or "migrated",
                                row.get("login_credential") or "")
    if row.get("cooldown_until"):
        health.set_cooldown(ident, row["cooldown_until"], row.get("reason") or "migrated")
    if row.get("rate_limits"):
        health.record_rate_limits(ident, row["rate_limits"])
