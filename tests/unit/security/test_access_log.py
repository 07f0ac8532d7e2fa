"""gateway.security.access_log: secrets in a URL never reach the access log, and the lazy
atoms give gunicorn's own line."""
from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from gateway.security.access_log import REDACTED, RedactingLogger, redact_query

FORMATS = [
    Config().access_log_format,  # gunicorn's default
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(T)s %(D)s %(M)s %(L)s %(p)s',
    '%(m)s %(U)s ?%(q)s %(H)s %(B)s {%({x-request-id}i)s} %({Content-Type}o)s '
    '%({remote_addr}e)s %({nothing}i)s %(zz)s',
    '%({authorization}i)s %({X-Api-Key}i)s %({http_cookie}e)s %({x-goog-api-key}i)s',
]


def _exchange(query: str):
    environ = {"REMOTE_ADDR": "10.0.0.7", "REQUEST_METHOD": "POST",
               "RAW_URI": "/v1beta/models/x:generate" + (f"?{query}" if query else ""),
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/v1beta/models/x:generate",
               "QUERY_STRING": query, "HTTP_USER_AGENT": 'curl/8 "quoted"',
               "HTTP_REFERER": f"https://example.test/p?{query}",
               "HTTP_AUTHORIZATION": "Bearer sk-secret-value", "HTTP_COOKIE": "s=secret"}
    req = SimpleNamespace(headers=[("AUTHORIZATION", "Bearer sk-secret-value"),
                                   ("X-REQUEST-ID", "abc"), ("X-API-KEY", "sk-other"),
                                   ("X-REQUEST-ID", "last")])
    resp = SimpleNamespace(status="200 OK", sent=1234,
                           headers=[("Content-Type", "application/json")])
    return resp, req, environ, datetime.timedelta(seconds=1, microseconds=2345)


def _gunicorn_line(fmt, resp, req, environ, took) -> str:
    """What gunicorn's own atoms give, redacted as the gateway asks (the reference)."""
    logger = Logger(Config())
    logger.now = lambda: "[06/Dec/2026:21:00:00 +0000]"
    atoms = Logger.atoms(logger, resp, req, environ, took)
    secret = {"{authorization}i", "{x-api-key}i", "{x-goog-api-key}i", "{cookie}i",
              "{proxy-authorization}i", "{http_authorization}e", "{http_x_api_key}e",
              "{http_x_goog_api_key}e", "{http_cookie}e"}
    for name, value in atoms.items():
        if name in secret:
            atoms[name] = REDACTED
        elif isinstance(value, str):
            atoms[name] = redact_query(value)
    return fmt % SafeAtoms(atoms)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("query", ["", "key=AIzaSECRET&alt=sse", "a=1&api_key=sk-x"])
def test_lazy_atoms_give_gunicorns_line(fmt, query):
    resp, req, environ, took = _exchange(query)
    logger = RedactingLogger(Config())
    logger.now = lambda: "[06/Dec/2026:21:00:00 +0000]"
    safe = logger.atoms_wrapper_class(logger.atoms(resp, req, environ, took))
    line = fmt % safe
    assert line == _gunicorn_line(fmt, resp, req, environ, took)
    assert "SECRET" not in line and "sk-" not in line and "s=secret" not in line

def test_the_access_log_hides_secrets_in_urls():
    from gateway.security.access_log import redact_query

    line = "GET /v1beta/models/m:generateContent?alt=sse&key=AIzaSECRET;token=t&monkey=1 HTTP/1.1"
    assert redact_query(line) == ("GET /v1beta/models/m:generateContent?alt=sse&key=[redacted];"
                                  "token=[redacted]&monkey=1 HTTP/1.1")
    assert redact_query("api_key=s3cret") == "api_key=[redacted]"
