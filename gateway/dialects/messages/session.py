"""gateway.dialects.messages.session
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Who calls and in which conversation: the continuity signal a Messages request
carries (Claude Code's session and agent headers, else ``metadata.user_id``)
and the client's key (``Authorization`` or ``x-api-key``). Pure: headers are
any mapping, looked up case-insensitively.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

SESSION_HEADER = "x-claude-code-session-id"
AGENT_HEADER = "x-claude-code-agent-id"
_OLD_USER_ID = re.compile(r"_session_([0-9A-Za-z-]{8,})$")


def header(headers: Mapping, name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == lname:
                value = val
                break
    return value.strip() if isinstance(value, str) and value.strip() else None


def session_signal(body: dict, headers: Mapping) -> str | None:
    """The conversation's continuity signal.

    ``X-Claude-Code-Session-Id`` first; else the ``session_id`` inside
    ``metadata.user_id`` (a JSON string in Claude Code 2.x, a
    ``user_…_session_<uuid>`` string before). Both stay the same across
    ``--continue`` and differ between sessions. Subagents share the session
    id and add ``x-claude-code-agent-id``: appended (``session/agent``) so
    their interleaved conversations get keys of their own. A plain
    ``user_id`` (an SDK user's own identifier) names a user, not a
    conversation, and is not used.
    """
    session = header(headers, SESSION_HEADER) or _metadata_session(body.get("metadata"))
    if session is None:
        return None
    agent = header(headers, AGENT_HEADER)
    return f"{session}/{agent}" if agent else session


def _metadata_session(metadata) -> str | None:
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or not user_id.strip():
        return None
    text = user_id.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        value = parsed.get("session_id") if isinstance(parsed, dict) else None
        return value.strip() if isinstance(value, str) and value.strip() else None
    match = _OLD_USER_ID.search(text)
    return match.group(1) if match else None


def client_authorization(headers: Mapping) -> str | None:
    """The client's key as an ``Authorization`` value for the key check.

    Claude Code sends ``Authorization: Bearer`` for ``ANTHROPIC_AUTH_TOKEN``
    and ``x-api-key`` for ``ANTHROPIC_API_KEY``, both when both are set. The
    Bearer token wins: ``ANTHROPIC_AUTH_TOKEN`` is the variable meant for
    gateways (no key-approval prompt, and it does not collide with a real
    Anthropic key left in ``ANTHROPIC_API_KEY``); ``x-api-key`` (what the
    Anthropic SDKs send) is used when there is no Bearer token.
    """
    auth = header(headers, "authorization")
    if auth and auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth
    key = header(headers, "x-api-key")
    if key:
        return f"Bearer {key}"
    return auth
