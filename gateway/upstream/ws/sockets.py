"""gateway.upstream.ws.sockets
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Conversation-affine WebSockets to the Codex backend: one worker's pool of them,
the rule that decides what a turn must upload, and the HTTP fallback.

Over HTTP every turn uploads the whole conversation. Over the backend's
WebSocket, the backend keeps the socket's previous response in memory even with
``store: false``, so a turn can be ``previous_response_id`` plus the items that
came after it (this is what Codex CLI does). So a worker keeps one open socket
per (account, continuity key): the key is what already keeps a conversation on
one account and one cache, so the turns of one conversation that reach this
worker find the socket that holds their previous response.

- **What is sent** (:func:`.delta.split`, pure): when the new full input is what this
  socket sent for its last response, then that response's output, then at
  least one new item, only the new items go, with ``previous_response_id``.
  Anything else (another worker served the last turn, the history was edited
  or compacted, the last response failed) is sent in full; the socket carries
  on. Items are compared by what the model sees (ids, ``status`` and empty
  annotations aside), so a Chat or Messages client that re-renders the answer
  in its own shape still continues it, and reasoning items the client could not
  send back may be missing: the backend keeps them. An upstream
  ``previous_response_not_found`` resends the same request in full, once.
- **No handshake on a turn's path** (``"auto"``, ``websocket_open_after_turns``
  ≥ 1): a turn that finds no idle socket for its conversation goes over pooled
  HTTP — what the HTTP transport would send — and, once the worker has seen that
  many turns of the conversation, a socket is opened on a thread of its own and
  joins the idle pool, so the turns after it find it. A one-turn conversation
  (``codex exec``, a one-shot SDK call) never opens a socket. ``"websocket"``
  (and 0) opens the socket on the turn's path, waiting for the upgrade.
- **As many sockets as the conversation uses at once**: turns of one
  conversation that run at once each take an idle socket of its envelope (or go
  over HTTP while one is opened), and every socket goes back to the pool, so
  concurrency costs each handshake once, not once per turn.
- **Correctness never depends on affinity**: a turn that lands on a worker
  without the socket (or on a new one) is a full request on a cold socket,
  exactly what HTTP would have sent.
- **Bounds** (:class:`.pool.SocketPool`): at most ``websocket_max_sockets`` idle
  sockets per worker (least recently used closed first), each closed after
  ``websocket_idle_seconds`` without a turn; a socket serving a response is its
  request's alone. What a socket remembers is a 16-byte digest per item, not the
  items, so an idle socket costs a few KB whatever the conversation's size.
- **Fallback** (``codex_transport = "auto"``): a refused upgrade (any status but
  101), a connection that fails, or a socket that breaks before the answer
  starts sends that request over HTTP and keeps the account on HTTP for
  ``websocket_fallback_seconds``, shared by the workers through a small file in
  the state directory (:class:`.fallback.FallbackMarks`). A refusal about the
  account rather than the transport
  (401, 403: the login; 429: its limit) sends that request over HTTP without the
  mark: there the login is refreshed or the account cools down and fails over,
  as for any request, and the next request tries the socket again (a mark would
  keep a healthy backend's socket unused for the whole period after one expired
  token). ``"websocket"`` never falls back: the upgrade's refusal is the
  upstream's answer, like an HTTP status.

An answer is an :class:`gateway.upstream.answer.Answer`, as over HTTP: an
error's status, headers and body, or a :class:`.reader.Reader` of its events.
Everything after that — keep-alive ticks, the idle timeout, terminal detection,
records — is :class:`gateway.stream.UpstreamStream`'s, as for HTTP.
"""
from __future__ import annotations

import atexit
import re
import threading
import weakref
from collections import OrderedDict
from pathlib import Path

from requests.structures import CaseInsensitiveDict

from ... import failures, jsonio
from ...errors import TransportError, UpstreamBroken, UpstreamTimeout
from ...protocol import code_of
from ..answer import Answer
from . import client
from .delta import hold, split
from .fallback import FALLBACK_FILE, FallbackMarks
from .pool import Conversation, SocketPool
from .reader import Reader

# Refused upgrades that are about the account (its login, its limit), not about
# WebSockets: HTTP serves that request, and the account is not kept on HTTP.
ACCOUNT_REFUSALS = frozenset({401, 403, 429})
TRANSPORT = "websocket"
SEEN_KEYS = 4096       # conversations whose turns a worker counts (least recent forgotten)
OPENING_PER_KEY = 1    # background upgrades of one conversation at once
_TYPE = re.compile(r'\{\s*"type"\s*:\s*"([^"\\]*)"')


class _Stale(Exception):
    """The socket failed before the backend answered anything."""


class CodexSockets:
    """The Codex backend over WebSocket for one worker (``upstream.codex_transport``)."""

    def __init__(self, ucfg, state_dir: Path):
        self.mode = ucfg.codex_transport.lower()
        self.pool = SocketPool(ucfg.websocket_max_sockets, ucfg.websocket_idle_seconds)
        self.fallback = FallbackMarks(Path(state_dir) / FALLBACK_FILE,
                                      ucfg.websocket_fallback_seconds)
        self.open_after = ucfg.websocket_open_after_turns if self.mode == "auto" else 0
        self._seen: OrderedDict[tuple, int] = OrderedDict()  # turns per conversation
        self._opening: dict[tuple, int] = {}  # background upgrades under way
        self._lock = threading.Lock()
        atexit.register(_close_pool, weakref.ref(self.pool))  # a worker's exit says goodbye

    def serves(self, account) -> bool:
        """Whether this request to *account* tries the WebSocket."""
        if self.mode == "http" or account.kind != "codex":
            return False
        return self.mode == "websocket" or not self.fallback.active(account.id)

    def send(self, account, profile, conversation: tuple, body: dict, headers: dict,
             timeout: tuple[float, float], prewarm: bool = False) -> Answer | None:
        """Send *body* on *conversation*'s socket to *account* (the conversation is
        the client principal and the continuity key: two clients never share a
        socket); None: send it over HTTP instead.

        *prewarm*: send it as Codex's ``generate: false`` (always in full, as
        Codex sends it first on a socket); the socket then holds its input for
        the next turn's delta. None means the same: it cannot go on a socket.

        Raises ``TransportError`` (``"websocket"`` mode) as the HTTP client does.
        """
        connect_timeout, read_timeout = timeout
        pkey = (account.id, *conversation)
        conv = self.pool.checkout(pkey)
        if conv is None and self.open_after and not prewarm:
            # No handshake on this turn's path: pooled HTTP serves it. A conversation
            # that goes on gets its socket in the background, for the turns after it.
            if self._count(pkey) >= self.open_after:
                self._open_later(account, profile.url(account), pkey, headers,
                                 connect_timeout, read_timeout)
            return None
        items = body.get("input") if isinstance(body.get("input"), list) else []
        prints = [hold(i) for i in items]
        for _ in range(2):
            fresh = conv is None
            if fresh:
                try:
                    sock = client.connect(profile.url(account), headers, connect_timeout,
                                          read_timeout)
                except client.Refused as refused:
                    if self.mode == "auto":
                        if refused.status not in ACCOUNT_REFUSALS:
                            self.fallback.mark(account.id)
                        return None
                    return refusal(refused)
                except TransportError:
                    if self.mode == "auto":
                        self.fallback.mark(account.id)
                        return None
                    raise
                conv = Conversation(sock, pkey)
            try:
                return self._exchange(conv, fresh, profile, body, headers, items, prints,
                                      read_timeout, prewarm)
            except _Stale:
                conv.socket.abort()
                conv = None
                if fresh:
                    if self.mode == "auto":
                        self.fallback.mark(account.id)
                        return None
                    raise UpstreamBroken("the upstream websocket closed before answering")
        return None  # not reached: the second round always has a fresh socket

    def _count(self, pkey: tuple) -> int:
        """The turns of *pkey* this worker saw before this one (bounded memory)."""
        with self._lock:
            seen = self._seen.pop(pkey, 0)
            self._seen[pkey] = min(seen + 1, self.open_after)
            if len(self._seen) > SEEN_KEYS:
                self._seen.popitem(last=False)
        return seen

    def _open_later(self, account, url: str, pkey: tuple, headers: dict,
                    connect_timeout: float, read_timeout: float) -> None:
        """Open a socket for *pkey* on a thread of its own; it joins the idle pool."""
        with self._lock:
            if self._opening.get(pkey, 0) >= OPENING_PER_KEY:
                return
            self._opening[pkey] = self._opening.get(pkey, 0) + 1
        threading.Thread(target=self._open, name="upstream-ws-open", daemon=True, args=(
            account.id, url, pkey, dict(headers), connect_timeout, read_timeout)).start()

    def _open(self, account_id, url, pkey, headers, connect_timeout, read_timeout) -> None:
        try:
            sock = client.connect(url, headers, connect_timeout, read_timeout)
        except client.Refused as refused:
            if refused.status not in ACCOUNT_REFUSALS:
                self.fallback.mark(account_id)
            return
        except TransportError:
            self.fallback.mark(account_id)
            return
        finally:
            with self._lock:
                left = self._opening.pop(pkey, 1) - 1
                if left:
                    self._opening[pkey] = left
        self.pool.checkin(Conversation(sock, pkey))

    def falls_back(self, account, failure) -> bool:
        """After a failure of a socket's answer before it started: should HTTP
        serve it instead?"""
        if self.mode != "auto":
            return False
        if failure.code not in failures.BROKEN_CODES:  # broke before the answer: HTTP
            return False
        self.fallback.mark(account.id)
        return True

    def _exchange(self, conv: Conversation, fresh: bool, profile, body: dict, headers: dict,
                  items: list, prints: list, read_timeout: float,
                  prewarm: bool = False) -> Answer:
        start = split(conv.sent, conv.output, prints) if conv.response_id and not prewarm \
            else None
        frame = {"type": "response.create", **body}
        if prewarm:
            frame["generate"] = False
        meta = {k.lower(): v for k, v in headers.items()
                if isinstance(v, str) and profile.forwards(k)}
        if isinstance(body.get("client_metadata"), dict):
            meta.update(body["client_metadata"])
        if meta:
            frame["client_metadata"] = meta
        if start is not None:
            frame["previous_response_id"] = conv.response_id
            frame["input"] = items[start:]
        first, error = self._send(conv, frame, read_timeout)
        if error is not None and start is not None and code_of(error) == "previous_response_not_found":
            conv.forget()
            frame.pop("previous_response_id", None)
            frame["input"] = items
            first, error = self._send(conv, frame, read_timeout)
        if error is not None and isinstance(error.get("status"), int) and error["status"] >= 400:
            # Refused before it started (the HTTP status of the same request): the
            # executor reads it as it reads an HTTP error answer.
            conv.socket.close()
            err = error.get("error")
            content = jsonio.dumps({"error": err} if isinstance(err, dict) else error)
            extra = error.get("headers") if isinstance(error.get("headers"), dict) else {}
            return Answer(error["status"], CaseInsensitiveDict(extra), TRANSPORT, body=content)
        return Answer(200, conv.socket.headers if fresh else CaseInsensitiveDict(), TRANSPORT,
                      reader=Reader(self.pool, conv, first, prints))

    def _send(self, conv: Conversation, frame: dict, read_timeout: float):
        """Send one request; its first message, and that message if it is an error."""
        try:
            conv.socket.send_text(jsonio.dumps_text(frame))
            first = conv.socket.receive(read_timeout)
        except UpstreamBroken:
            raise _Stale() from None
        if first is None:
            conv.socket.abort()
            raise UpstreamTimeout("the upstream websocket sent nothing (read timeout)")
        match = _TYPE.match(first)
        if match and match.group(1) != "error":
            return first, None
        try:
            data = jsonio.loads(first)
        except ValueError:
            return first, None
        if isinstance(data, dict) and data.get("type") == "error":
            return first, data
        return first, None


def _close_pool(ref) -> None:
    pool = ref()
    if pool is not None:
        pool.close_all()


def refusal(refused: client.Refused) -> Answer:
    """A refused upgrade with ``codex_transport = "websocket"`` as the upstream's answer:
    the account's own refusals (401, 403, 429, 5xx) as they are, so a login is
    refreshed and a limit cools the account as over HTTP; any other status (426,
    404, …) says this backend does not take WebSockets: a 502 that says what to set."""
    status = refused.status
    if status in (401, 403, 429) or status >= 500:
        return Answer(status, refused.headers, TRANSPORT, body=refused.body)
    message = (f"The upstream refused the WebSocket upgrade (HTTP {status}); set "
               'upstream.codex_transport = "auto" or "http" to use HTTP.')
    return Answer(502, CaseInsensitiveDict(), TRANSPORT, body=jsonio.dumps(
        {"error": {"message": message, "type": "server_error",
                   "code": "upstream_websocket_refused"}}))
