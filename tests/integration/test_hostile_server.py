"""Requests gunicorn itself refuses get the gateway's JSON error, never an HTML page.

Real gunicorn (the shipped config, so the shipped worker class), raw sockets:
requests does not let a test send a broken request line or a NUL in a header.
"""
from __future__ import annotations

import json
import socket

import pytest

from tests.support import CLIENT_KEY, gateway_env

AUTH = f"Authorization: Bearer {CLIENT_KEY}\r\n".encode()


def _get(extra: bytes = b"", line: bytes = b"GET /v1/models HTTP/1.1") -> bytes:
    return line + b"\r\nHost: 127.0.0.1\r\n" + AUTH + extra + b"\r\n"


def _post_chunked(body: bytes) -> bytes:
    return (b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body)


# (case, raw request, status, error code)
CASES = [
    ("header over the field size limit", _get(b"X-Big: " + b"a" * 9000 + b"\r\n"), 431,
     "request_header_fields_too_large"),
    ("more header fields than the limit",
     _get(b"".join(b"X-H%d: v\r\n" % i for i in range(150))), 431,
     "request_header_fields_too_large"),
    ("bad request line", b"THIS IS NOT HTTP\r\n\r\n", 400, "invalid_request_line"),
    ("unknown HTTP version", _get(line=b"GET /v1/models HTTP/7.0"), 400, "invalid_request_line"),
    ("request line over the limit", _get(line=b"GET /" + b"a" * 5000 + b" HTTP/1.1"), 414,
     "request_line_too_long"),
    ("non-ASCII header name", _get("X-Caf\u00e9: 1\r\n".encode()), 400, "invalid_header_name"),
    ("space in a header name", _get(b"X Bad: 1\r\n"), 400, "invalid_header_name"),
    ("NUL in a header value", _get(b"X-A: a\x00b\r\n"), 400, "invalid_header"),
    ("NUL in the Authorization value",
     b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + CLIENT_KEY.encode()
     + b"\x00\r\n\r\n", 400, "invalid_header"),
    ("bare LF after the request line", b"GET /v1/models HTTP/1.1\nHost: x\n\n", 400,
     "invalid_request_line"),
    ("bare LF after a header", b"GET /v1/models HTTP/1.1\r\nHost: x\n\r\n", 400,
     "invalid_header"),
    ("obsolete line folding", _get(b"X-A: a\r\n b\r\n"), 400, "invalid_header"),
    ("Content-Length and Transfer-Encoding",
     b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + AUTH
     + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "invalid_header"),
    ("two Content-Length values",
     b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + AUTH
     + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, "invalid_header"),
    # Found only while the app reads the body (so Flask answers, through the worker's input).
    ("chunk size not hex", _post_chunked(b"zz\r\nabc\r\n0\r\n\r\n"), 400,
     "invalid_chunked_body"),
    ("chunk without its CRLF", _post_chunked(b"3\r\nabcXX0\r\n\r\n"), 400,
     "invalid_chunked_body"),
]


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send *raw*, read until the server closes; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


@pytest.fixture
def gw(gateway_factory, upstream, tmp_path):
    return gateway_factory(gateway_env(upstream, tmp_path), workers=1, threads=4, name="hostile")


def check(port: int, raw: bytes, status: int, code: str) -> str | None:
    """What is wrong with the answer to *raw*, or None."""
    got, headers, body = exchange(port, raw)
    try:
        err = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return f"{got} {headers.get('content-type')}: {body[:80]!r}"
    wrong = []
    if got != status:
        wrong.append(f"status {got}")
    if headers.get("content-type") != "application/json":
        wrong.append(f"content-type {headers.get('content-type')}")
    if int(headers.get("content-length", -1)) != len(body):
        wrong.append("content-length")
    if set(err) != {"message", "type", "param", "code"} or not err["message"]:
        wrong.append(f"shape {sorted(err)}")
    if err.get("code") != code:
        wrong.append(f"code {err.get('code')}")
    if status < 500 and err.get("type") != "invalid_request_error":
        wrong.append(f"type {err.get('type')}")
    if CLIENT_KEY in body.decode(errors="replace"):
        wrong.append("the client key is in the answer")
    return ", ".join(wrong) or None


def test_refused_requests_get_json_and_a_quiet_log(gw):
    """The whole table against one gunicorn (one start, not one per case)."""
    wrong = {case: problem for case, raw, status, code in CASES
             if (problem := check(gw.port, raw, status, code))}
    assert not wrong, wrong
    # A transfer coding gunicorn cannot decode: 501 is the status RFC 9112 asks for.
    raw = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + AUTH
           + b"Transfer-Encoding: brotli\r\n\r\n")
    assert check(gw.port, raw, 501, "unsupported_transfer_coding") is None
    # The worker still serves good requests after all that.
    status, _, body = exchange(gw.port, _get(b"Connection: close\r\n"))
    assert status == 200 and json.loads(body)["object"] == "list"
    logs = gw.logs()
    assert "refused request from ip=127.0.0.1: 431 request_header_fields_too_large" in logs
    assert logs.count("refused request from ip=") == len(CASES) - 2 + 1  # not the 2 body cases
    assert "Traceback" not in logs
    assert "<html" not in logs.lower()
    assert CLIENT_KEY not in logs
