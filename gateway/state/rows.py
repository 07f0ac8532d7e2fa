"""gateway.state.rows
~~~~~~~~~~~~~~~~~~~~~
Health rows as plain dicts, and every change to one as a pure function.

The SQLite store does these changes in SQL; a store without SQL (Redis) does
them here, in a read-modify-write transaction, and applies the same function
to its in-memory snapshot when the store cannot be reached, so a worker keeps
honouring the cooldowns it records itself during an outage. One function per
change, so both paths cannot disagree.
"""
from __future__ import annotations

COLUMNS = ("cooldown_until", "reason", "failures", "probe_at", "needs_login", "login_reason",
           "login_credential", "rate_limits", "last_used", "last_refresh")


def empty() -> dict:
    """A row with nothing recorded (what SQLite's column defaults give)."""
    row = dict.fromkeys(COLUMNS)
    row.update(failures=0, needs_login=False, rate_limits={})
    return row


def normalise(row) -> dict:
    """A stored row (maybe from an older version, or hand-edited) with every column."""
    out = empty()
    if isinstance(row, dict):
        out.update({k: row[k] for k in COLUMNS if k in row})
    out["needs_login"] = bool(out["needs_login"])
    out["failures"] = out["failures"] if isinstance(out["failures"], int) else 0
    out["rate_limits"] = out["rate_limits"] if isinstance(out["rate_limits"], dict) else {}
    return out


def apply(row: dict | None, op: str, args: dict, now: float) -> tuple[dict | None, bool]:
    """``(new row or None to delete, result)`` of change *op* on *row* (None: no row).

    The result is what the caller is told: for ``claim_probe`` whether the
    claim was won; for the others whether anything changed.
    """
    old = row
    row = normalise(row) if row is not None else None
    if op == "forget":
        return None, old is not None
    if op == "claim_probe":
        if row is None or not ((row["cooldown_until"] or 0) > now) or not (
                row["probe_at"] is None or row["probe_at"] <= args["older_than"]):
            return old, False
        row["probe_at"] = now
        return row, True
    if op == "clear" and args.get("before") is not None and not args.get("login"):
        # Only a cooldown set before the successful request was sent ends.
        if row is None or not (row["probe_at"] is None or row["probe_at"] <= args["before"]):
            return old, False
        row.update(cooldown_until=None, reason=None, failures=0)
        return row, row != normalise(old)
    fresh = row is None
    row = row if row is not None else empty()
    if op == "set_cooldown":
        row.update(cooldown_until=args["until"], reason=args["reason"], probe_at=now,
                   failures=1 if fresh else row["failures"] + 1)
    elif op == "clear":
        row.update(cooldown_until=None, reason=None, failures=0)
        if args.get("login"):
            row.update(needs_login=False, login_reason=None, login_credential=None)
    elif op == "mark_needs_login":
        row.update(needs_login=True, login_reason=args["reason"],
                   login_credential=args.get("credential", ""))
    elif op == "record_rate_limits":
        row["rate_limits"] = dict(args["limits"])
        if args.get("used", True):  # False: windows read from the usage endpoint
            row["last_used"] = now
    elif op == "record_used":
        row["last_used"] = now
    elif op == "record_refresh":
        row["last_refresh"] = now
    else:
        raise ValueError(f"unknown health change {op!r}")
    return row, True
