"""gateway.policy.quota
~~~~~~~~~~~~~~~~~~~~~~~
What a key may see of the serving account's quota.

The Codex backend reports the account's quota in ``x-codex-*`` answer headers
and in ``codex.rate_limits`` events. A key with ``show_quota`` (the owner's own
tools) gets both, as a direct Codex CLI would, and over a client WebSocket
(where no answer headers reach it) a ``codex.rate_limits`` event at the start
of each turn; every other key gets neither.
"""
from __future__ import annotations

from ..sse import Event, make_event

EVENT = "codex.rate_limits"
HIDDEN_EVENTS = frozenset({EVENT})


def rate_limits_event(limits: dict) -> Event | None:
    """The ``codex.rate_limits`` event for quota windows parsed from answer headers
    (``{"primary": {"used_percent", "window_minutes", "reset_at"}, ...}``)."""
    windows = {w: {k: v for k, v in limits[w].items() if k in
                   ("used_percent", "window_minutes", "reset_at")}
               for w in ("primary", "secondary") if isinstance(limits.get(w), dict)}
    if not windows:
        return None
    return make_event({"type": EVENT, "rate_limits": windows})
