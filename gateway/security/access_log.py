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

import os
import re
from collections.abc import Mapping

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
    """gunicorn's logger; access-log atoms pass :func:`redact_query` first.

    gunicorn builds every atom for every request (each request and answer
    header, every environ variable, then a quoted copy of them all) although a
    format names a few: here an atom is made when the format asks for it, with
    gunicorn's meaning (an unknown one is ``-``, ``{header}i`` in any case, ``"``
    escaped), which costs a tenth as much per request (``make bench``)."""

    # The lazy atoms are their own wrapper (gunicorn's copies every atom to quote it).
    atoms_wrapper_class = staticmethod(lambda atoms: atoms)

    def atoms(self, resp, req, environ, request_time):
        return _Atoms(self, resp, req, environ, request_time)


def _letters(logger, resp, environ, request_time) -> dict:
    """gunicorn's one-letter atoms (docs.gunicorn.org, "Access log format")."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    sent = getattr(resp, "sent", None)
    seconds, micros = request_time.seconds, request_time.microseconds
    return {
        "h": environ.get("REMOTE_ADDR", "-"), "l": "-",
        "u": logger._get_user(environ) or "-", "t": logger.now(),
        "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
        "s": status, "m": environ.get("REQUEST_METHOD"), "U": environ.get("PATH_INFO"),
        "q": environ.get("QUERY_STRING"), "H": environ.get("SERVER_PROTOCOL"),
        "b": str(sent) if sent is not None else "-", "B": sent,
        "f": environ.get("HTTP_REFERER", "-"), "a": environ.get("HTTP_USER_AGENT", "-"),
        "T": seconds, "D": seconds * 1000000 + micros, "M": seconds * 1000 + micros // 1000,
        "L": "%d.%06d" % (seconds, micros), "p": f"<{os.getpid()}>",
    }


class _Atoms(Mapping):
    """The atoms of one access-log line, each made when the format names it."""

    __slots__ = ("_logger", "_resp", "_req", "_environ", "_time", "_letters")

    def __init__(self, logger, resp, req, environ, request_time):
        self._logger, self._resp, self._req = logger, resp, req
        self._environ, self._time = environ, request_time
        self._letters = None

    def __getitem__(self, name: str):
        if name.startswith("{"):
            name = name.lower()
            value = self._lookup(name)
            if value is not None and name in _SECRET_HEADERS:
                return REDACTED
        else:
            if self._letters is None:
                self._letters = _letters(self._logger, self._resp, self._environ, self._time)
            value = self._letters.get(name)
        if value is None:
            return "-"
        if isinstance(value, str):
            return redact_query(value).replace('"', '\\"')
        return value

    def _lookup(self, name: str):
        field, kind = name[1:-2], name[-1:]
        if name[-2:-1] != "}" or kind not in "ioe":
            return None
        if kind == "e":
            for key, value in self._environ.items():
                if key.lower() == field:
                    return value
            return None
        headers = getattr(self._req, "headers", self._req) if kind == "i" else self._resp.headers
        found = None
        for key, value in (headers.items() if hasattr(headers, "items") else headers):
            if key.lower() == field:
                found = value  # the last of a repeated header, as gunicorn's
        return found

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 1  # logging formats a mapping argument only when it is not empty
