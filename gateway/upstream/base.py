"""gateway.upstream.base
~~~~~~~~~~~~~~~~~~~~~~~~~
What every upstream profile shares: body preparation driven by a drop list,
client header forwarding, and reading an error response.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass

from ..continuity import Continuity, apply

_UNSUPPORTED = re.compile(r"(?:Unsupported|Unknown|Unrecognized) parameter:?\s*'?\"?([A-Za-z0-9_.\[\]]+)")
_TRY_AGAIN = re.compile(r"try again in ([0-9.]+)\s*(ms|s)", re.I)

# Client headers that describe the client's own turn and are safe to pass on.
FORWARD_EXACT = ("version", "x-client-request-id", "x-openai-subagent")
FORWARD_PREFIX = "x-codex-"


@dataclass
class UpstreamFailure:
    """An upstream error, read once, with what the executor needs to decide."""

    status: int
    message: str
    code: str | None = None
    type: str | None = None
    retry_at: float | None = None  # epoch seconds when it is worth trying again
    unsupported_param: str | None = None
    body: dict | None = None

    @property
    def usage_limit(self) -> bool:
        return self.code in ("usage_limit_reached", "usage_not_included")


class Profile:
    """Base profile. Subclasses set ``kind``, URL and body rules."""

    kind = "base"

    def __init__(self, base_url: str, drop_params, session_headers, ucfg):
        self.base_url = base_url.rstrip("/")
        self.static_drops = frozenset(drop_params)
        self.session_headers = tuple(session_headers)
        self.cfg = ucfg
        # Parameters this worker learned the backend rejects (see README:
        # "learned drops"); a lost entry costs one retried 400, never a cache.
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

    def normalise(self, body: dict) -> None:  # pragma: no cover - overridden
        pass

    def headers(self, creds, client_headers, cont: Continuity) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {creds.token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        for name, value in client_headers.items():
            lname = name.lower()
            if lname.startswith(FORWARD_PREFIX) or lname in FORWARD_EXACT:
                headers[name] = value
        apply({}, headers, cont, self.session_headers)
        return headers


def parse_failure(status: int, content: bytes, headers) -> UpstreamFailure:
    """Read an upstream error body of any of the shapes the backends use."""
    body = None
    try:
        body = json.loads(content or b"null")
    except ValueError:
        pass
    message = code = kind = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message, code, kind = err.get("message"), err.get("code"), err.get("type")
        if kind in ("usage_limit_reached", "usage_not_included") and not code:
            code = kind
    elif isinstance(err, str):
        message = err
    if message is None and isinstance(body, dict) and isinstance(body.get("detail"), str):
        message = body["detail"]
    if message is None:
        message = (content or b"").decode("utf-8", "replace")[:500] or f"HTTP {status}"
    failure = UpstreamFailure(status, str(message), code if isinstance(code, str) else None,
                              kind if isinstance(kind, str) else None, body=body if isinstance(body, dict) else None)
    m = _UNSUPPORTED.search(failure.message) if status == 400 else None
    if m:
        failure.unsupported_param = m.group(1)
    failure.retry_at = _retry_at(err if isinstance(err, dict) else {}, headers, failure.message)
    return failure


def _retry_at(err: dict, headers, message: str) -> float | None:
    now = time.time()
    resets_at = err.get("resets_at")
    if isinstance(resets_at, (int, float)) and resets_at > 0:
        return float(resets_at)
    resets_in = err.get("resets_in_seconds")
    if isinstance(resets_in, (int, float)) and resets_in >= 0:
        return now + float(resets_in)
    retry_after = headers.get("Retry-After") if headers is not None else None
    if retry_after:
        try:
            return now + float(retry_after)
        except ValueError:
            pass
    m = _TRY_AGAIN.search(message or "")
    if m:
        value = float(m.group(1))
        return now + (value / 1000 if m.group(2).lower() == "ms" else value)
    return None
