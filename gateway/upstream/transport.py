"""gateway.upstream.transport
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Sending to the upstream and reading its stream.

One pooled ``requests.Session`` per worker thread (Session thread-safety is
undocumented), created lazily, so always after gunicorn forks. Bodies are
read with ``read1`` so every chunk is handed on as soon as it arrives.
"""
from __future__ import annotations

import queue
import socket
import threading

import requests
from requests.adapters import HTTPAdapter

from .. import jsonio

_local = threading.local()
CHUNK = 65536
_EOF = object()


def session(pool_maxsize: int = 16) -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = requests.Session()
        s.trust_env = False  # proxies/netrc from the environment must not leak tokens
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        _local.session = s
    return s


def post(url: str, body: dict, headers: dict, timeout: tuple[float, float],
         pool_maxsize: int = 16) -> requests.Response:
    """POST *body* as JSON, the answer streamed.

    Goes straight to the session's adapter (``HTTPAdapter.send``) with a copy
    of a request prepared once per URL. ``Session.request`` would add what we
    must not have (a cookie jar shared by every account, redirects followed with
    the account's token, environment proxies) at about a quarter of the
    per-request cost (``bench.run``). Header values are still validated.
    """
    prepared = _prepared(url).copy()
    prepared.prepare_headers(headers)
    prepared.prepare_body(jsonio.dumps(body), None)
    return session(pool_maxsize).get_adapter(url).send(prepared, stream=True, timeout=timeout)


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
    while True:
        chunk = raw.read1(CHUNK)
        if not chunk:
            return
        yield chunk


def hard_close(resp: requests.Response) -> None:
    """Close the upstream connection now, even if another thread is blocked on it.

    ``shutdown`` wakes a blocked ``recv`` and sends FIN, so the upstream sees
    the disconnect at once; the connection is never returned to the pool.
    """
    sock = None
    try:
        conn = getattr(resp.raw, "_connection", None)
        sock = getattr(conn, "sock", None)
        if sock is None:
            fp = getattr(resp.raw, "_fp", None)
            sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
    except Exception:  # noqa: BLE001 - best effort, close() below still runs
        sock = None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        resp.close()
    except Exception:  # noqa: BLE001
        pass


class Pump:
    """Read the upstream in a helper thread so the response can send
    keep-alive comments while the upstream is silent (long reasoning phases)
    and notice a client that left, without ever blocking on a dead read.
    """

    def __init__(self, resp: requests.Response):
        self._resp = resp
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True, name="upstream-pump")
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in iter_raw(self._resp):
                self._q.put(chunk)
            self._q.put(_EOF)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._q.put(exc)

    def get(self, timeout: float):
        """Next chunk; None on timeout; raises the reader's exception; _EOF at end."""
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        hard_close(self._resp)


EOF_MARK = _EOF
