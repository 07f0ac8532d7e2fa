"""gateway.upstream.codex
~~~~~~~~~~~~~~~~~~~~~~~~~~
The ChatGPT Codex backend (``chatgpt.com/backend-api/codex``).

It only streams, refuses stored responses, wants a string ``instructions``
and rejects a list of parameters (``upstream.codex_drop_params`` names them).
Those facts are configuration with defaults, because the backend changes
without notice.
Its ``x-codex-*`` headers are its own: the client's are forwarded (they
describe the client's turn), ``x-codex-turn-state`` is relayed back, and the
``x-codex-{primary,secondary}-*`` answer headers report the account's quota.
"""
from __future__ import annotations

import hashlib
import re
import time

from .base import Profile
from .identity import ClientIdentity

ENCRYPTED_REASONING = "reasoning.encrypted_content"
TURN_STATE = "x-codex-turn-state"
# A turn state is the issuing account's: the value the client gets carries a tag of
# that account after this mark, and goes back upstream (without the tag) only to
# the same account. Stateless, so every worker and instance agrees.
TURN_STATE_MARK = "~gw~"
_WINDOW_FIELDS = (("used-percent", "used_percent", float),
                  ("window-minutes", "window_minutes", int),
                  ("reset-at", "reset_at", float),
                  ("reset-after-seconds", "reset_at", None))
# The account's quota: x-codex-{primary,secondary}-*, x-codex-credits-*, the promo
# message, and other limit families (x-<limit>-primary-used-percent, ...-limit-name).
_QUOTA_HEADER = re.compile(r"x-codex-(credits-|promo-)|x-[a-z0-9-]+-(primary|secondary)-"
                           r"|x-[a-z0-9-]+-limit-name$")


class CodexProfile(Profile):
    forward_exact = frozenset({"version", "x-client-request-id", "x-openai-subagent"})
    forward_prefixes = ("x-codex-",)
    relay_headers = (TURN_STATE,)

    def __init__(self, ucfg, identity: ClientIdentity | None = None):
        super().__init__(ucfg.codex_base_url, ucfg.codex_drop_params,
                         ucfg.codex_session_headers, ucfg)
        self.identity = identity or ClientIdentity(ucfg)

    def normalise(self, body: dict) -> None:
        # previous_response_id never reaches here resolved or not: the Responses dialect
        # expands it from the response store (dialects/responses/chaining.py).
        body.pop("previous_response_id", None)
        items = body.get("input")
        if isinstance(items, list) and any(_is_system(i) for i in items):
            # The backend refuses the system role; developer is what it takes instead.
            body["input"] = [{**i, "role": "developer"} if _is_system(i) else i for i in items]
        body["stream"] = True
        body["store"] = False
        include = body.get("include")
        include = list(include) if isinstance(include, list) else []
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        body["include"] = include
        if not isinstance(body.get("instructions"), str):
            body["instructions"] = ""

    def headers(self, creds, client_headers, cont):
        headers = super().headers(creds, client_headers, cont)
        state = next((k for k in headers if k.lower() == TURN_STATE), None)
        if state is not None:
            original = turn_state_for(headers.pop(state), creds.account_id)
            if original:
                headers[TURN_STATE] = original
        if creds.account_id:
            headers["chatgpt-account-id"] = creds.account_id
        if self.identity.observe(client_headers):  # Codex CLI itself: its own identity
            headers["originator"] = client_headers["originator"]
            headers["User-Agent"] = client_headers["User-Agent"]
        else:
            headers.update(self.identity.headers())
        return headers

    def relayed(self, answer_headers, creds=None) -> dict[str, str]:
        out = super().relayed(answer_headers, creds)
        if out.get(TURN_STATE):
            out[TURN_STATE] = bind_turn_state(out[TURN_STATE], creds.account_id if creds else None)
        return out

    def quota_headers(self, answer_headers) -> dict[str, str]:
        return {name: value for name, value in answer_headers.items()
                if _QUOTA_HEADER.match(name.lower())}

    def rate_limits(self, answer_headers) -> dict:
        """``x-codex-{primary,secondary}-*`` as ``{window: {used_percent, …}}``."""
        out: dict = {}
        now = time.time()
        for window in ("primary", "secondary"):
            item = {}
            for name, key, conv in _WINDOW_FIELDS:
                value = answer_headers.get(f"x-codex-{window}-{name}")
                if value is None or key in item:
                    continue
                try:
                    item[key] = conv(value) if conv else now + float(value)
                except ValueError:
                    pass
            if item:
                out[window] = item
        return out


def _account_tag(account_id: str | None) -> str:
    digest = hashlib.sha256(b"codex-gateway turn state\0" + (account_id or "").encode())
    return digest.hexdigest()[:12]


def bind_turn_state(value: str, account_id: str | None) -> str:
    """The turn state the client is given: the upstream's value, tagged with its account."""
    return f"{value}{TURN_STATE_MARK}{_account_tag(account_id)}"


def turn_state_for(value: str, account_id: str | None) -> str | None:
    """The upstream value of a client's turn state when *account_id* issued it, else None
    (another account's, after a failover; or one the gateway did not tag)."""
    original, mark, tag = value.rpartition(TURN_STATE_MARK)
    if not mark or tag != _account_tag(account_id):
        return None
    return original


def _is_system(item) -> bool:
    return isinstance(item, dict) and item.get("role") == "system" and \
        item.get("type", "message") == "message"
