"""gateway.upstream.wire
~~~~~~~~~~~~~~~~~~~~~~~~~~
The one way a request reaches the upstream: :meth:`Wire.send`.

The conversation's WebSocket when the account's backend takes it
(``upstream.codex_transport``), else — or when the socket cannot serve this
request — HTTP. Either way the answer is one :class:`~.answer.Answer`; which
wire carried it is only its ``transport``.
"""
from __future__ import annotations

from pathlib import Path

from . import http
from .answer import Answer
from .ws import CodexSockets


class Wire:
    """One worker's ways to the upstream (its socket pool lives here)."""

    def __init__(self, ucfg, state_dir: Path, pool_maxsize: int):
        self.sockets = CodexSockets(ucfg, state_dir)
        self.pool_maxsize = pool_maxsize

    def send(self, account, profile, conversation: tuple, body: dict, headers: dict,
             timeout: tuple[float, float], prewarm: bool = False) -> Answer | None:
        """Send *body* for *conversation* (the client principal and the continuity
        key) to *account*; raises ``TransportError``.

        *prewarm*: Codex's ``generate: false``, which only a socket can carry (over
        HTTP it would be a real, billed request): None when it cannot go on one."""
        if self.sockets.serves(account):
            answer = self.sockets.send(account, profile, conversation, body, headers, timeout,
                                       prewarm)
            if answer is not None or prewarm:
                return answer
        elif prewarm:
            return None
        return http.send(profile.url(account), body, headers, timeout, self.pool_maxsize)

    def falls_back(self, answer: Answer, account, failure) -> bool:
        """After *answer* failed before it started: should HTTP serve the request
        instead (a socket that broke; the account then stays on HTTP a while)?"""
        return answer.transport == "websocket" and self.sockets.falls_back(account, failure)
