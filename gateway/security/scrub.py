"""gateway.security.scrub
~~~~~~~~~~~~~~~~~~~~~~~~~
The one place text from outside is made safe to show (docs/security.md).

Two directions, one module:

- **Upstream text** (an error message, an error code, a relayed header) may echo
  what the gateway sent: an account's access token or API key, its ChatGPT
  account id. :func:`upstream_text` removes every secret this process has sent
  (:func:`remember`, called for every credential the account pool hands out),
  anything shaped like a bearer token, an API key or a JWT, control characters,
  and bounds the length. :func:`upstream_code` keeps an error code a code
  (bounded, ``[A-Za-z0-9_.-]``); :func:`metric_code` maps it onto a fixed set
  (others are ``other``), so a label never takes upstream text.
- **Client text** (a model name, a key name) that reaches a log line, a header,
  a usage row or a page: :func:`client_text` bounds and escapes it, and
  :func:`model_problem` says why a model name cannot be accepted at all.

Pure: no web framework, no configuration.
"""
from __future__ import annotations

import re
import threading

from ..jsonio import dumps_text, loads

REDACTED = "[redacted]"
MAX_MESSAGE = 500       # characters of upstream error text a client sees
MAX_CODE = 64
MAX_MODEL = 128         # a model name longer than this is refused (400)
MAX_LOGGED = 200        # client text in a log line, a usage row or a page
_SCAN = 65536           # upstream text looked at at all
_KNOWN_CAP = 4096       # secrets remembered per process (oldest forgotten first)
_MIN_SECRET = 6         # shorter values are not secrets worth matching

_known: dict[str, None] = {}  # an ordered set
_lock = threading.Lock()

# Shapes of credentials, whoever they belong to: "Bearer <anything>", OpenAI keys
# (also the masked "sk-proj-****abcd" of an API 401), JWTs, this gateway's client keys.
_SHAPES = re.compile(
    r"(?i:\bbearer\s+)[^\s\"',;]+"
    r"|\b(?:sk|rk|pk)-[A-Za-z0-9_*.\-]{4,}"
    r"|\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"
    r"|\bcgw-[A-Za-z0-9_\-]{8,}")
# C0 and C1 controls, DEL, line and paragraph separators, bidi overrides.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,%d}" % MAX_CODE)

# The codes a metric label may take: the upstream's known codes and the gateway's own.
METRIC_CODES = frozenset({
    "context_length_exceeded", "invalid_request", "invalid_request_error", "invalid_prompt",
    "invalid_value", "previous_response_not_found", "usage_not_included", "model_not_found",
    "rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "usage_limit_reached",
    "server_error", "upstream_error", "stream_truncated", "upstream_unreachable",
    "upstream_connection_lost", "server_is_overloaded", "overloaded", "upstream_timeout",
    "upstream_connect_timeout", "upstream_auth_failed", "token_expired", "invalid_api_key",
    "refresh_failed", "account_deactivated", "permission_error", "authentication_error",
    "not_found_error", "api_error", "overloaded_error", "invalid_token",
})
OTHER = "other"


def remember(*values) -> None:
    """Secrets this process sends upstream (tokens, API keys, account ids): never shown."""
    with _lock:
        for value in values:
            if isinstance(value, str) and len(value) >= _MIN_SECRET and value not in _known:
                _known[value] = None
                if len(_known) > _KNOWN_CAP:
                    del _known[next(iter(_known))]


def without_known(text: str) -> str:
    """*text* with every remembered secret replaced; nothing else changed (for
    values that must stay as they are otherwise, such as a relayed header)."""
    if not text or not _known:
        return text
    for secret in list(_known):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def upstream_text(value, limit: int = MAX_MESSAGE) -> str:
    """Upstream text as a client may see it: no secret, no control character,
    at most *limit* characters."""
    text = value if isinstance(value, str) else str(value)
    text = without_known(text[:_SCAN])
    text = _SHAPES.sub(REDACTED, text)
    text = _CONTROL.sub(" ", text)
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text


def upstream_code(value) -> str | None:
    """An upstream error code the client may see: a short token, or None."""
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        return None
    return None if without_known(value) != value else value


def metric_code(value: str | None) -> str:
    """A metric label value: one of :data:`METRIC_CODES`, ``http_<status>``, or ``other``."""
    if value in METRIC_CODES:
        return value
    if isinstance(value, str) and re.fullmatch(r"http_[1-5][0-9][0-9]", value):
        return value
    return OTHER


def client_text(value, limit: int = MAX_LOGGED) -> str:
    """Client text for a log line, a usage row, a header or a page: control
    characters escaped (a newline cannot start a forged log line), at most
    *limit* characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", text)


def model_problem(model) -> str | None:
    """Why *model* cannot be a model name (too long, control characters, not
    sendable in a header), or None when it can."""
    if not isinstance(model, str):
        return None  # the dialect's own validation says what it wants
    if len(model) > MAX_MODEL:
        return f"The model name is longer than {MAX_MODEL} characters."
    if _CONTROL.search(model):
        return "The model name contains control characters."
    try:
        model.encode("latin-1")
    except UnicodeEncodeError:
        return "The model name contains characters outside Latin-1."
    return None


def failure_event(event) -> None:
    """Rewrite an in-stream ``error`` / ``response.failed`` event (a
    :class:`gateway.sse.Event`) in place so its error text is scrubbed: the
    Responses dialect passes such events to the client as they are."""
    data = event.data
    if not data:
        return
    changed = False
    for err in _error_objects(data):
        for key in ("message", "code", "type", "param"):
            value = err.get(key)
            if not isinstance(value, str):
                continue
            if key == "message":
                clean = upstream_text(value)
            elif key == "param":
                clean = upstream_text(value, MAX_CODE)
            else:
                clean = upstream_code(value) or OTHER
            if clean != value:
                err[key] = clean
                changed = True
    text = dumps_text(data)
    clean = without_known(text)  # a secret anywhere else in the event (JSON stays valid)
    if clean != text:
        text, data, changed = clean, loads(clean), True
    if changed:
        event.data_text = text
        event._raw = None  # the SSE bytes are built again from the scrubbed text
        event._data, event._parsed = data, True


def _error_objects(data: dict) -> list[dict]:
    found = []
    if data.get("type") == "error":
        nested = data.get("error")
        found.append(nested if isinstance(nested, dict) else data)
    response = data.get("response")
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        found.append(response["error"])
    return found
