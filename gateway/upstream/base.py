"""gateway.upstream.base
~~~~~~~~~~~~~~~~~~~~~~~~~
What every upstream profile shares: body preparation driven by a drop list,
the client headers a backend may see, and what its answer headers mean.

Everything a backend's wire contract says lives in a profile: which client
headers it is given, its session header names, the headers that relay state
back to the client and the ones that report its rate limits. The executor and
the account pool only ask.
"""
from __future__ import annotations

import threading

from ..continuity import Continuity, apply


class Profile:
    """Base profile; subclasses set the URL, the body rules and the header knowledge."""

    # Client headers that describe the client's own turn and are safe to pass on.
    forward_exact: frozenset[str] = frozenset()
    forward_prefixes: tuple[str, ...] = ()
    # Upstream answer headers relayed to the client as they are.
    relay_headers: tuple[str, ...] = ()

    def __init__(self, base_url: str, drop_params, session_headers, ucfg):
        self.base_url = base_url.rstrip("/")
        self.static_drops = frozenset(drop_params)
        self.session_headers = tuple(session_headers)
        self.cfg = ucfg
        # Parameters this worker learned the backend rejects (see docs/concepts/upstreams.md,
        # "Uncertain upstream facts"); a lost entry costs one retried 400, never a cache.
        self._learned: set[str] = set()
        self._lock = threading.Lock()

    def url(self, account) -> str:
        return (account.base_url or self.base_url).rstrip("/") + "/responses"

    def learn_unsupported(self, param: str) -> None:
        with self._lock:
            self._learned.add(param)

    def drops(self) -> frozenset:
        return self.static_drops | self._learned if self._learned else self.static_drops

    def prepare(self, body: dict, cont: Continuity) -> tuple[dict, list[str]]:
        """Return the upstream body and the client parameters it had to drop."""
        drops = self.drops()
        out = {k: v for k, v in body.items() if k not in drops}
        dropped = [k for k in body if k in drops]
        self.normalise(out)
        apply(out, {}, cont, ())
        return out, dropped

    def normalise(self, body: dict) -> None:
        """Backend body rules, in place (subclasses)."""

    def forwards(self, name: str) -> bool:
        lname = name.lower()
        return lname in self.forward_exact or lname.startswith(self.forward_prefixes)

    def headers(self, creds, client_headers, cont: Continuity) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {creds.token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        for name, value in client_headers.items():
            if self.forwards(name):
                headers[name] = value
        apply({}, headers, cont, self.session_headers)
        return headers

    def relayed(self, answer_headers, creds=None) -> dict[str, str]:
        """Answer headers the client gets back (e.g. the Codex turn state)."""
        out = {}
        for name in self.relay_headers:
            value = answer_headers.get(name)
            if value:
                out[name] = value
        return out

    def rate_limits(self, answer_headers) -> dict:
        """The backend's quota windows reported in its answer headers ({} when none)."""
        return {}

    def quota_headers(self, answer_headers) -> dict[str, str]:
        """The answer headers that report the account's quota, as they are (relayed
        only to a key with ``show_quota``)."""
        return {}
