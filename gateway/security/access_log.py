"""gateway.security.access_log
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
gunicorn's access log without secrets a client put in a URL (docs/security.md).

A client may send its key as ``?key=`` (the Gemini convention) or ``?api_key=``;
such a request is refused or served, but its request line must not carry the
key into the log. Every access-log field that may hold a query string (the
request line, the query, the referer, the environ) has the values of secret
parameters replaced, and credential headers are never logged whatever the
format asks for.
"""
from __future__ import annotations

import re

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
_SECRET_PARAM = re.compile(
    r"(?i)((?:^|[?&;])(?:key|api[-_]?key|apikey|access[-_]?token|token|auth|authorization|"
    r"secret|client[-_]?secret|password|passwd|sig|signature|refresh[-_]?token|id[-_]?token)"
    r"=)[^&;\s]*")
_SECRET_HEADERS = frozenset({"{authorization}i", "{x-api-key}i", "{x-goog-api-key}i",
                             "{cookie}i", "{proxy-authorization}i", "{http_authorization}e",
                             "{http_x_api_key}e", "{http_x_goog_api_key}e", "{http_cookie}e"})


def redact_query(text: str) -> str:
    """*text* (a URL, a query string, a request line) with secret parameter values hidden."""
    return _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text) if "=" in text else text


class RedactingLogger(Logger):
    """gunicorn's logger; access-log atoms pass :func:`redact_query` first."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if name in _SECRET_HEADERS:
                atoms[name] = REDACTED
            elif isinstance(value, str) and "=" in value:
                atoms[name] = redact_query(value)
        return atoms
