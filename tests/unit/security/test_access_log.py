"""gateway.security.access_log: secrets in a URL never reach the access log."""
from __future__ import annotations


def test_the_access_log_hides_secrets_in_urls():
    from gateway.security.access_log import redact_query

    line = "GET /v1beta/models/m:generateContent?alt=sse&key=AIzaSECRET;token=t&monkey=1 HTTP/1.1"
    assert redact_query(line) == ("GET /v1beta/models/m:generateContent?alt=sse&key=[redacted];"
                                  "token=[redacted]&monkey=1 HTTP/1.1")
    assert redact_query("api_key=s3cret") == "api_key=[redacted]"
