"""gateway.upstream.transport
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Sending to the upstream over HTTP and reading its stream.

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
import threading

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .. import jsonio
from ..errors import (TransportError, UpstreamBroken, UpstreamConnectTimeout, UpstreamTimeout,
                      UpstreamUnreachable)

_local = threading.local()
_shared: dict = {}
_shared_lock = threading.Lock()
CHUNK = 65536
EOF = object()  # what ``Reader.next`` returns at the end of the body


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
                adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize,
                                      max_retries=0)
                s.mount("http://", adapter)
                s.mount("https://", adapter)
                _shared.clear()
                _shared[os.getpid()] = s
    return s


def post(url: str, body: dict, headers: dict, timeout: tuple[float, float],
         pool_maxsize: int = 16) -> requests.Response:
    """POST *body* as JSON, the answer streamed; raises ``TransportError``.

    Goes straight to the session's adapter (``HTTPAdapter.send``) with a copy
    of a request prepared once per URL. ``Session.request`` would add what we
    must not have (a cookie jar shared by every account, redirects followed with
    the account's token, environment proxies) at about a quarter of the
    per-request cost (``bench.run``). Header values are still validated.
    """
    prepared = _prepared(url).copy()
    prepared.prepare_headers(headers)
    prepared.prepare_body(jsonio.dumps(body), None)
    try:
        resp = session(pool_maxsize).get_adapter(url).send(prepared, stream=True,
                                                           timeout=timeout)
    except BaseException as exc:  # noqa: BLE001 - translated, or re-raised as is
        raise translate(exc) from None
    prepared.body = None  # sent: an open stream need not keep the conversation
    return resp


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


class Reader:
    """An upstream body read with a timeout per wait, in the request's own thread:
    ``next(timeout)`` returns a chunk, None when nothing came in time, or ``EOF``;
    it raises the gateway's ``TransportError``.

    Waiting is a ``poll`` on the upstream socket, after checking what the HTTP
    client already holds (its buffered reader may have read past the chunk it
    returned). No second thread per stream: that thread cost ~100 KB of RSS and a
    queue hand-over per packet (``make bench``). The response can still send
    keep-alive comments while the upstream is silent and notice a client that left.
    """

    __slots__ = ("_resp", "_raw", "_buffer", "_sock", "_poll", "_chunks")

    def __init__(self, resp: requests.Response):
        self._resp = resp
        self._raw = resp.raw
        fp = getattr(getattr(self._raw, "_fp", None), "fp", None)  # http.client's buffer
        self._buffer = fp if hasattr(fp, "peek") else None
        self._sock = _socket_of(resp)
        self._poll = None
        if self._sock is not None:
            self._poll = select.poll()
            self._poll.register(self._sock.fileno(), select.POLLIN | select.POLLPRI)
        self._chunks = iter_raw(resp)

    def _buffered(self) -> bool:
        """Whether a read can be served without waiting on the network."""
        if getattr(self._raw, "_decoded_buffer", None):
            return True
        buf = self._buffer
        if buf is None or self._sock is None:
            return True  # cannot tell: read (blocking, bounded by the read timeout)
        body = self._raw._fp  # http.client's response
        if body.fp is None or body.length == 0:
            return True  # the body is complete: the read ends it without the network
        timeout = self._sock.gettimeout()
        try:
            self._sock.settimeout(0)
            data = buf.peek(1)  # what the buffer holds; never waits on a non-blocking socket
            if getattr(body, "chunked", False) and getattr(body, "chunk_left", None) == 0:
                return len(data) > 2  # a lone CRLF ends the last chunk: nothing to read yet
            return bool(data)
        except (BlockingIOError, OSError, ValueError):
            return False
        finally:
            try:
                self._sock.settimeout(timeout)
            except OSError:
                pass

    def next(self, timeout: float):
        if self._poll is not None and not self._buffered():
            try:
                ready = self._poll.poll(max(0.0, timeout) * 1000)
            except (OSError, ValueError):
                ready = True  # the socket is gone: the read says how
            if not ready:
                return None
        return next(self._chunks, EOF)

    def close(self) -> None:
        hard_close(self._resp)
