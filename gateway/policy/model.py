"""gateway.policy.model
~~~~~~~~~~~~~~~~~~~~~~~
The policy of one client key: data beside the key's digest, keyed by the key's
id (``key-<12 hex>``), never by the key. Every field is optional; a key without
a policy may use every model without limit, and sees no account quota.
"""
from __future__ import annotations

import calendar
import dataclasses
import re
import time
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+)\s*([dhmw])")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LIMITS = ("tokens_per_day", "tokens_per_week", "requests_per_minute", "concurrency")


@dataclass(frozen=True)
class Policy:
    models: tuple[str, ...] = ()          # allowed models (catalog names); empty: all
    tokens_per_day: int | None = None     # input + output tokens per UTC day
    tokens_per_week: int | None = None    # input + output tokens per ISO week (Monday, UTC)
    requests_per_minute: int | None = None  # requests in any 60 s
    concurrency: int | None = None        # answers in flight at once
    expires_at: float | None = None       # unix seconds; the key is refused (401) from then
    revoked: bool = False                 # refused (401) for good
    show_quota: bool = False              # sees the serving account's x-codex-* quota

    @property
    def counted(self) -> bool:
        """Whether requests of this key need the shared counters."""
        return any(getattr(self, name) is not None for name in _LIMITS)

    @property
    def empty(self) -> bool:
        return self == Policy()

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models

    def to_dict(self) -> dict:
        """JSON-ready, without the fields left at their default."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data) -> "Policy":
        """A stored policy; unknown or ill-typed fields are ignored (an old or
        newer writer must never lock a key out by accident)."""
        if not isinstance(data, dict):
            return cls()
        kwargs: dict = {}
        models = data.get("models")
        if isinstance(models, list) and all(isinstance(m, str) for m in models):
            kwargs["models"] = tuple(models)
        for name in _LIMITS:
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                kwargs[name] = value
        expires = data.get("expires_at")
        if isinstance(expires, (int, float)) and not isinstance(expires, bool):
            kwargs["expires_at"] = float(expires)
        for name in ("revoked", "show_quota"):
            if isinstance(data.get(name), bool):
                kwargs[name] = data[name]
        return cls(**kwargs)

    def replace(self, **changes) -> "Policy":
        return dataclasses.replace(self, **changes)


def parse_expires(text: str, now: float | None = None) -> float | None:
    """``30d``, ``12h``, ``2w``, ``90m`` from now, or a UTC date ``2027-01-31``
    (the key works through that day), or ``never``; ValueError otherwise."""
    now = time.time() if now is None else now
    text = text.strip().lower()
    if text in ("never", "none", ""):
        return None
    m = _DURATION.fullmatch(text)
    if m:
        return now + int(m.group(1)) * _UNIT[m.group(2)]
    try:
        day = time.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"--expires {text!r}: give a duration (30d, 12h, 2w) or a UTC date "
                         "(2027-01-31)") from None
    return float(calendar.timegm(day) + 86400)


def parse_limit(text: str, name: str) -> int | None:
    """A positive whole number (``20000``, ``20k``, ``1m``), or ``none`` for no limit."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    if text in ("none", "off", "unlimited", ""):
        return None
    scale = {"k": 1000, "m": 1000000}.get(text[-1:], 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        value = -1
    if value < 1:
        raise ValueError(f"--{name.replace('_', '-')} {text!r}: give a positive number "
                         "(or 'none')")
    return value


def format_time(ts: float | None) -> str:
    if ts is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
