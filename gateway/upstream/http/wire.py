"""gateway.upstream.http.wire
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The HTTP/1.1 exchange below ``requests``' adapter, made cheaper per request
without changing a byte of it: urllib3 connection classes, set as the pools'
``ConnectionCls`` (nothing global is patched), that send a request's header
block and body in one segment and parse a plain answer header block without
the ``email`` package.

http.client parses every answer's header block with the ``email`` package's
feed parser (a line-splitting state machine built for MIME), and urllib3 then
reads every value back through the email policy: ~90 µs for the ~20 headers the
Codex backend sends, ~25 µs here (``python -m bench.upstream_http``). A block
that is plain (every line ``name: value`` in printable ASCII, no folded lines,
not multipart) is built here into the ``HTTPMessage`` the stdlib builds (the
same state: names, values, order and repeats; a property test compares them);
anything else is handed to the stdlib's parser.
"""
from __future__ import annotations

import http.client
import io
import re
import types

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# A plain header block, as read (the blank line included): names of the characters
# the email parser takes as a header name, values of printable ASCII, space and tab
# (the parser splits lines on more than CR LF: \x0b, \x0c, \x1c-\x1e, \x85 ...).
_PLAIN = re.compile(rb"(?:[!-9;-~]+:[\t -~]*\r\n)*\r\n")
# A body type the email parser would parse the (empty) body of, finding defects.
_MIME_BODY = re.compile(rb"^content-type:[^\r]*(?:multipart|message)", re.I | re.M)


class PlainMessage(http.client.HTTPMessage):
    """The stdlib's message of a plain block: its values, decoded from Latin-1,
    hold no surrogates, so the policy's per-value check (which wraps a value with
    surrogates in a ``Header``) gives each back as is, and ``items()`` (urllib3
    reads them all per answer) is the list."""

    def items(self):
        return self._headers[:]


def parse_headers(fp, _class=http.client.HTTPMessage):
    """``http.client.parse_headers``' answer, built directly when the block is plain."""
    lines = http.client._read_headers(fp)  # its line and count limits, as before
    block = b"".join(lines)
    if _PLAIN.fullmatch(block) is None or _MIME_BODY.search(block) is not None:
        return http.client.parse_headers(io.BytesIO(block), _class)
    msg = (PlainMessage if _class is http.client.HTTPMessage else _class)()
    raw = msg._headers  # what the parser's set_raw appends to
    for line in lines[:-1]:
        name, value = line.decode("latin-1").split(":", 1)
        raw.append((name, value.lstrip(" \t")[:-2]))
    msg.set_payload("")
    return msg


def _begin_with(func):
    """http.client's own ``HTTPResponse.begin``, its global ``parse_headers`` ours
    (the module itself untouched); the stdlib's as is where it no longer calls it."""
    if "parse_headers" not in func.__code__.co_names:
        return func
    scope = dict(vars(http.client), parse_headers=parse_headers)
    return types.FunctionType(func.__code__, scope, func.__name__, func.__defaults__,
                              func.__closure__)


class Response(http.client.HTTPResponse):
    begin = _begin_with(http.client.HTTPResponse.begin)


class _OneSend:
    """A request's header block and its (bytes) body leave in one ``send``: urllib3
    sends them apart, two system calls (and a poll before each, the socket having a
    timeout), two TCP segments (TLS: two records). The bytes are the same."""

    ONE_SEND_MAX = 1 << 18  # a larger body is not copied behind its head
    _held = None  # the header block waiting for the body; b"": the next send is it

    def request(self, method, url, body=None, headers=None, **kwargs):
        if not (type(body) is bytes and 0 < len(body) <= self.ONE_SEND_MAX):
            return super().request(method, url, body, headers, **kwargs)
        self._held = b""
        try:
            super().request(method, url, body, headers, **kwargs)
            if self._held:  # no body went (cannot be, for bytes): the head alone
                super().send(self._held)
        finally:
            self._held = None

    def send(self, data):
        held = self._held
        if held is None:
            return super().send(data)
        if not held:  # the header block (http.client sends it first, whole)
            self._held = data
            return None
        self._held = None
        return super().send(held + data)


class Connection(_OneSend, HTTPConnection):
    response_class = Response


class TLSConnection(_OneSend, HTTPSConnection):
    response_class = Response


class Pool(HTTPConnectionPool):
    ConnectionCls = Connection


class TLSPool(HTTPSConnectionPool):
    ConnectionCls = TLSConnection


POOL_CLASSES = {"http": Pool, "https": TLSPool}
