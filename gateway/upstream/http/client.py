"""gateway.upstream.http.client
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Sending to the upstream over HTTP and reading its stream as events.

This is the failure boundary of the HTTP client: ``requests``' and
``urllib3``'s exceptions are caught here and raised again as the gateway's own
(:mod:`gateway.errors`: unreachable, timeout, broken mid-stream), so no other
module imports them.

One pooled HTTP adapter per worker process, shared by its threads (urllib3's
connection pools are thread-safe, and the gateway calls the adapter directly,
never the Session's cookie or redirect machinery), created lazily, so always
after gunicorn forks. One per thread cost every new stream thread a Session, a
pool manager and a connection of its own (``make bench``). Bodies are
read with ``read1`` so every chunk is handed on as soon as it arrives.
"""
from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import time

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity, get_encoding_from_headers, to_native_string
from urllib3 import HTTPHeaderDict

from ... import jsonio
from ...relay import EOF, READ, WAITING, Relayable
from ...sse import SSEParser
from . import body as framing
from . import wire
from ...errors import (TransportError, UpstreamBroken, UpstreamConnectTimeout, UpstreamTimeout,
                      UpstreamUnreachable)

_local = threading.local()
_shared: dict = {}
_shared_lock = threading.Lock()
CHUNK = 65536
RECV = 8192  # per recv: what http.client buffered; a larger one cost RSS per stream (bench)


def session(pool_maxsize: int = 16) -> requests.Session:
    """The process's session (its adapter keeps up to *pool_maxsize* idle
    connections per upstream host; more may be open at once)."""
    s = _shared.get(os.getpid())
    if s is None:
        with _shared_lock:
            s = _shared.get(os.getpid())
            if s is None:
                s = requests.Session()
                s.trust_env = False  # proxies/netrc from the environment must not leak tokens
                adapter = _Adapter(pool_connections=4, pool_maxsize=pool_maxsize,
                                   max_retries=0)
                s.mount("http://", adapter)
                s.mount("https://", adapter)
                _shared.clear()
                _shared[os.getpid()] = s
    return s


class _Adapter(HTTPAdapter):
    """``requests``' adapter that finds a URL's connection pool once, not on every
    request: the gateway posts to a few configured URLs, with no proxy and the
    default certificate checks, so the per-request lookup (URL parsing, the pool
    key, the CA bundle's path checked on disk, the request line) gave the same
    answer every time (~50 µs per request under bench load). A pool closed since
    (the adapter's ``close``) is looked up again."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._found: dict[str, tuple] = {}  # url -> (pool, request line)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = wire.POOL_CLASSES  # cheaper answers

    def _lookup(self, request, verify, proxies, cert):
        if proxies or verify is not True or cert is not None:
            return None
        hit = self._found.get(request.url)
        if hit is None or hit[0].pool is None:  # first use, or closed since
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            super().cert_verify(pool, request.url, verify, cert)
            if len(self._found) > 16:
                self._found.clear()
            hit = self._found[request.url] = (pool, super().request_url(request, proxies))
        return hit

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        hit = self._lookup(request, verify, proxies, cert)
        if hit is None:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        return hit[0]

    def cert_verify(self, conn, url, verify, cert):
        hit = self._found.get(url)
        if hit is None or hit[0] is not conn or verify is not True or cert is not None:
            super().cert_verify(conn, url, verify, cert)  # else: done when it was found

    def request_url(self, request, proxies):
        hit = None if proxies else self._found.get(request.url)
        return hit[1] if hit is not None else super().request_url(request, proxies)

    def close(self):
        self._found.clear()
        super().close()

    def build_response(self, req, resp):
        """``requests``' answer without the cookies taken into its jar: nothing reads
        them (the gateway keeps no cookies, and ``post`` is no Session), and the
        cookie module parsed every ``Set-Cookie`` the backend sends."""
        response = requests.Response()
        response.status_code = resp.status
        headers = resp.headers  # urllib3's: its repeats merged as its Mapping view gives them
        response.headers = CaseInsensitiveDict(
            headers.itermerged() if isinstance(headers, HTTPHeaderDict) else headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url
        response.request = req
        response.connection = self
        return response


def post(url: str, body: dict, headers: dict, timeout: tuple[float, float],
         pool_maxsize: int = 16) -> requests.Response:
    """POST *body* as JSON, the answer streamed; raises ``TransportError``.

    Goes straight to the session's adapter (``HTTPAdapter.send``) with a request
    built by :func:`_request`. ``Session.request`` would add what we
    must not have (a cookie jar shared by every account, redirects followed with
    the account's token, environment proxies) at about a quarter of the
    per-request cost (``bench.run``). Header values are still validated.

    Connections are reused (see :class:`Reader`), so an upstream may close one
    while it idles in the pool, just as it is taken: a request that finds its
    connection closed before any answer byte is sent once more, on a new one.
    """
    prepared = _request(url, headers, jsonio.dumps(body))
    adapter = session(pool_maxsize).get_adapter(url)
    for attempt in (1, 2):
        try:
            resp = adapter.send(prepared, stream=True, timeout=timeout)
            break
        except requests.exceptions.ConnectionError as exc:
            if attempt == 1 and _closed_before_answer(exc):
                continue
            raise translate(exc) from None
        except BaseException as exc:  # noqa: BLE001 - translated, or re-raised as is
            raise translate(exc) from None
    prepared.body = None  # sent: an open stream need not keep the conversation
    return resp


def _closed_before_answer(exc: requests.exceptions.ConnectionError) -> bool:
    """urllib3's "Connection aborted": the peer closed or reset an established
    connection before the status line (a new connection that fails is refused or
    unreachable instead, and is not retried here: failover decides)."""
    cause = exc.args[0] if exc.args else None
    if not isinstance(cause, urllib3.exceptions.ProtocolError):
        return False
    inner = cause.args[1] if len(cause.args) > 1 else None
    return isinstance(inner, (ConnectionResetError, BrokenPipeError)) or \
        type(inner).__name__ == "RemoteDisconnected"


def read_body(resp: requests.Response) -> bytes:
    """The whole (error) body; a broken read gives what arrived (maybe nothing)."""
    try:
        return resp.content
    except BaseException as exc:  # noqa: BLE001
        translate(exc)
        return b""
    finally:
        resp.close()


def translate(exc: BaseException) -> BaseException:
    """The gateway's own exception for an HTTP client one (others unchanged)."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UpstreamConnectTimeout(str(exc))
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError,
                        TimeoutError, socket.timeout)):
        return UpstreamTimeout(str(exc))
    if isinstance(exc, requests.exceptions.ConnectionError):
        return UpstreamUnreachable(str(exc))
    if isinstance(exc, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                        OSError)):
        return UpstreamBroken(str(exc))
    return exc


def _request(url: str, headers: dict, data: bytes) -> requests.PreparedRequest:
    """The request ``PreparedRequest.prepare_headers`` and ``prepare_body`` made
    of a copy of the URL's prepared request, built directly: the URL as requests
    normalised it (once per URL), each header checked by requests' own
    ``check_header_validity`` (no CR, LF or leading whitespace: no header
    injection), the Content-Length last. The copy cost a cookie jar copied per
    request, and ``prepare_body`` its type probes, for bytes every time."""
    prepared = requests.PreparedRequest()
    prepared.method = "POST"
    prepared.url = _prepared(url).url
    fields = prepared.headers = CaseInsensitiveDict()
    for header in headers.items():
        check_header_validity(header)
        name = header[0]
        fields[name if name.__class__ is str else to_native_string(name)] = header[1]
    if data:
        fields["Content-Length"] = str(len(data))
    prepared.body = data
    return prepared


def _prepared(url: str) -> requests.PreparedRequest:
    cache = _local.__dict__.setdefault("prepared", {})
    hit = cache.get(url)
    if hit is None:
        if len(cache) > 16:
            cache.clear()
        hit = cache[url] = requests.Request("POST", url).prepare()
    return hit


def iter_raw(resp: requests.Response):
    """Yield body chunks as they arrive (chunked or not), decoded."""
    raw = resp.raw
    try:
        while True:
            chunk = raw.read1(CHUNK)
            if not chunk:
                return
            yield chunk
    except BaseException as exc:  # noqa: BLE001
        raise translate(exc) from None


def hard_close(resp: requests.Response) -> None:
    """Close the upstream connection now, even if another thread is blocked on it.

    ``shutdown`` wakes a blocked ``recv`` and sends FIN, so the upstream sees
    the disconnect at once; the connection is never returned to the pool.
    """
    sock = _socket_of(resp)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        resp.close()
    except Exception:  # noqa: BLE001
        pass


def _socket_of(resp: requests.Response):
    """The upstream connection's socket (None when it cannot be found)."""
    try:
        conn = getattr(resp.raw, "_connection", None)
        sock = getattr(conn, "sock", None)
        if sock is None:
            fp = getattr(resp.raw, "_fp", None)
            sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
        return sock
    except Exception:  # noqa: BLE001 - best effort
        return None


class Reader(Relayable):
    """An upstream body read with a timeout per wait, in the request's own thread:
    ``next(timeout)`` returns the events of what arrived (parsed SSE), None when
    nothing came in time, or ``EOF``; it raises the gateway's ``TransportError``.

    Once the answer's headers are parsed the reader takes the socket over: it
    takes what http.client had buffered past the headers, makes the socket
    non-blocking for the rest of the body, and then each packet costs one ``poll``
    and one ``recv`` (TLS: ``pending()`` first, decrypted bytes poll cannot see),
    the body framing decoded by :mod:`.body`. Through http.client the same
    packet cost two ``ioctl`` (timeout changes), two ``poll`` and a ``recv``, and
    under load every system call is also a hand-over of the GIL (``make bench``).
    No second thread per stream: that thread cost ~100 KB of RSS per stream.

    A body that ends as its framing says gives the connection back to the pool
    (the next turn skips a TCP and TLS handshake); anything else closes it.
    """

    __slots__ = ("_resp", "_sock", "_poll", "_body", "_decoder", "_ready", "_saved",
                 "_tls", "_chunks", "_released", "_eof", "_relayed", "_tick", "_drained",
                 "_parser")

    def __init__(self, resp: requests.Response):
        self._resp = resp
        self._parser = SSEParser()
        self._released = self._eof = self._relayed = self._tick = self._drained = False
        self._ready = b""
        self._poll = self._decoder = None
        self._chunks = None
        raw = resp.raw
        body = getattr(raw, "_fp", None)  # http.client's response
        fp = getattr(body, "fp", None)
        sock = self._sock = _socket_of(resp)
        encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
        if (sock is None or not hasattr(fp, "peek") or encoding != "identity"
                or getattr(body, "chunk_left", None) is not None
                or getattr(raw, "_decoded_buffer", None)):
            self._chunks = iter_raw(resp)  # odd cases: blocking reads, the socket's timeout
            return
        self._body = body
        self._tls = hasattr(sock, "pending")
        self._decoder = (framing.Chunked() if getattr(body, "chunked", False)
                         else framing.Length(body.length) if body.length is not None
                         else framing.UntilClose())
        self._saved = sock.gettimeout()
        try:
            sock.settimeout(0)
            self._ready = self._decoder.feed(_take_buffered(fp))
            if not getattr(body, "will_close", True):
                body.fp = None  # http.client's 8 KB buffer is not needed any more
        except (OSError, framing.FramingError) as exc:
            self._chunks = _raising(exc)  # said at the first read, where errors are expected
            return
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLPRI)
        if self._decoder.done:
            self._release()

    def next(self, timeout: float):
        chunk = self.next_bytes(timeout)
        if chunk.__class__ is bytes:
            return self._parser.feed(chunk)
        if chunk is EOF:
            return self._parser.flush() or EOF  # a last frame without its blank line
        return chunk

    def next_bytes(self, timeout: float):
        """The next chunk of the body, None (nothing in *timeout*), ``EOF`` or,
        relayed, ``WAITING``."""
        if self._ready:
            data, self._ready = self._ready, b""
            return data
        if self._chunks is not None:
            return next(self._chunks, EOF)
        if self._eof:
            return EOF
        if self._relayed:
            return self._next_relayed()
        sock, poll = self._sock, self._poll
        deadline = None
        while True:
            if not (self._tls and sock.pending()):
                wait = timeout if deadline is None else deadline - time.monotonic()
                try:
                    if not poll.poll(max(0.0, wait) * 1000):
                        return None
                except (OSError, ValueError):
                    pass  # the socket is gone: the read says how
            try:
                data = sock.recv(RECV)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                # Woken without a whole TLS record (or spuriously): wait again.
                if deadline is None:
                    deadline = time.monotonic() + timeout
                continue
            except OSError as exc:
                raise translate(exc) from None
            out = self._decode(data)
            if out:
                return out
            if deadline is None:  # only framing bytes came: keep waiting, same deadline
                deadline = time.monotonic() + timeout

    # -- relayed: a loop waits on the socket for this reader (gateway.relay) --------
    def relay_fd(self) -> int | None:
        """The socket a loop may wait on for the rest of the body; None when this
        reader cannot be relayed (the body is over, or read the slow way)."""
        if self._chunks is not None or self._eof or self._poll is None:
            return None
        try:
            return self._sock.fileno()
        except OSError:
            return None

    def _next_relayed(self):
        early = self._relay_early()
        if early is not READ:
            return early
        sock = self._sock
        while True:
            try:
                data = sock.recv(RECV)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return WAITING
            except OSError as exc:
                raise translate(exc) from None
            out = self._decode(data)
            # A short read took all the kernel had; asking again would only raise EAGAIN,
            # whose exception costs ~2 µs. Not over TLS: it may hold bytes of records it
            # read ahead, which neither epoll nor pending() can see, so read on until it
            # says it wants more.
            drained = len(data) < RECV and not self._tls
            if out:
                self._drained = drained
                return out
            if drained:
                return WAITING

    def _decode(self, data: bytes):
        """The body bytes in *data* (``b""``: framing only), ``EOF`` at the end."""
        decoder = self._decoder
        if not data:
            self._eof = True
            try:
                decoder.at_eof()
            except framing.FramingError as exc:
                raise UpstreamBroken(str(exc)) from None
            return EOF
        try:
            out = decoder.feed(data)
        except framing.FramingError as exc:
            raise UpstreamBroken(str(exc)) from None
        if decoder.done:
            self._release()
            return out or EOF
        return out

    def _release(self) -> None:
        """The body ended as framed: the connection goes back to the pool."""
        self._eof = True
        self._released = True
        try:
            self._sock.settimeout(self._saved)
            self._body.close()  # http.client: the response is done, the connection reusable
            self._resp.raw.release_conn()
        except Exception:  # noqa: BLE001 - a connection we cannot hand back is closed
            self._released = False

    def close(self) -> None:
        if self._released:
            self._resp.close()
        else:
            hard_close(self._resp)


def _take_buffered(fp) -> bytes:
    """What http.client's buffered reader holds past the headers, taken out of it.
    Never waits: the socket is non-blocking by now."""
    try:
        data = fp.peek(CHUNK)
    except (BlockingIOError, ssl.SSLWantReadError):
        return b""
    if data:
        fp.read(len(data))
    return data


def _raising(exc: BaseException):
    error = UpstreamBroken(str(exc)) if isinstance(exc, framing.FramingError) else translate(exc)
    raise error
    yield  # a generator: raised at the first next()
