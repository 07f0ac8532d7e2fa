"""gateway.upstream.sockets
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Conversation-affine WebSockets to the Codex backend: one worker's pool of them,
the rule that decides what a turn must upload, and the HTTP fallback.

Over HTTP every turn uploads the whole conversation. Over the backend's
WebSocket, the backend keeps the socket's previous response in memory even with
``store: false``, so a turn can be ``previous_response_id`` plus the items that
came after it (this is what Codex CLI does). So a worker keeps one open socket
per (account, continuity key): the key is what already keeps a conversation on
one account and one cache, so the turns of one conversation that reach this
worker find the socket that holds their previous response.

- **What is sent** (:func:`split`, pure): when the new full input is what this
  socket sent for its last response, then that response's output, then at
  least one new item, only the new items go, with ``previous_response_id``.
  Anything else (another worker served the last turn, the history was edited
  or compacted, the last response failed) is sent in full; the socket carries
  on. Items are compared by what the model sees (ids, ``status`` and empty
  annotations aside), so a Chat or Messages client that re-renders the answer
  in its own shape still continues it, and reasoning items the client could not
  send back may be missing: the backend keeps them. An upstream
  ``previous_response_not_found`` resends the same request in full, once.
- **Correctness never depends on affinity**: a turn that lands on a worker
  without the socket (or on a new one) is a full request on a cold socket,
  exactly what HTTP would have sent.
- **Bounds** (:class:`SocketPool`): at most ``websocket_max_sockets`` idle
  sockets per worker (least recently used closed first), each closed after
  ``websocket_idle_seconds`` without a turn; a socket serving a response is its
  request's alone. What a socket remembers is a 16-byte digest per item, not the
  items, so an idle socket costs a few KB whatever the conversation's size.
- **Fallback** (``codex_transport = "auto"``): a refused upgrade (any status but
  101), a connection that fails, or a socket that breaks before the answer
  starts sends that request over HTTP and keeps the account on HTTP for
  ``websocket_fallback_seconds``, shared by the workers through a small file in
  the state directory. A refusal about the account rather than the transport
  (401, 403: the login; 429: its limit) sends that request over HTTP without the
  mark: there the login is refreshed or the account cools down and fails over,
  as for any request, and the next request tries the socket again (a mark would
  keep a healthy backend's socket unused for the whole period after one expired
  token). ``"websocket"`` never falls back: the upgrade's refusal is the
  upstream's answer, like an HTTP status.

An answer is returned as :class:`Answer`, shaped like the HTTP client's response
(``status_code``, ``headers``, ``content``), whose ``open_reader()`` gives the
stream machinery what ``transport.Reader`` gives it: ``next(timeout)`` → SSE
bytes, None (silence) or ``EOF``, and ``close()``. Everything after that —
keep-alive ticks, the idle timeout, terminal detection, records — is
:class:`gateway.stream.UpstreamStream`'s, as for HTTP.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from requests.structures import CaseInsensitiveDict

from .. import failures, jsonio
from ..protocol import COMPLETED, OUTPUT_ITEM_DONE, TERMINAL, OutputCollector, code_of
from ..background import weak_loop
from ..errors import TransportError, UpstreamBroken, UpstreamTimeout
from ..statefiles import atomic_write, private_dir
from . import transport, websocket

FALLBACK_FILE = "upstream-websocket-fallback.json"
# A pooled socket that heard nothing from the backend for this long is probed
# (ping, pong within PROBE_WAIT) before a turn is sent on it: a middlebox may
# have dropped it silently. The reaper pings idle sockets every REAP_EVERY.
PROBE_AFTER = 30.0
PROBE_WAIT = 2.0
REAP_EVERY = 15.0
# Refused upgrades that are about the account (its login, its limit), not about
# WebSockets: HTTP serves that request, and the account is not kept on HTTP.
ACCOUNT_REFUSALS = frozenset({401, 403, 429})
_TYPE = re.compile(r'\{\s*"type"\s*:\s*"([^"\\]*)"')


# -- what a turn must upload (pure) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Held:
    """What a socket remembers of one item: a digest of what the model sees."""

    digest: bytes
    reasoning: bool = False


def view(item):
    """The part of an input item the model sees: without ``id`` and ``status``,
    text parts as one ``text`` type, empty ``annotations``/``logprobs`` dropped;
    a reasoning item is its encrypted content (or id)."""
    if not isinstance(item, dict):
        return item
    kind = item.get("type")
    if kind == "reasoning":
        return ["reasoning", item.get("encrypted_content") or item.get("id")]
    out = {k: v for k, v in item.items() if k != "id" and k != "status"}
    if kind == "message" or (kind is None and "role" in item):
        out["type"] = "message"
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict):
                    part = {k: v for k, v in part.items()
                            if not (k in ("annotations", "logprobs") and not v)}
                    if part.get("type") in ("input_text", "output_text"):
                        part["type"] = "text"
                parts.append(part)
            out["content"] = parts
    return out


def hold(item) -> Held:
    """The :class:`Held` digest of *item* (stable across processes)."""
    value = view(item)
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return Held(hashlib.blake2b(data, digest_size=16).digest(),
                isinstance(item, dict) and item.get("type") == "reasoning")


def _held(value) -> Held:
    return value if isinstance(value, Held) else hold(value)


def split(sent: Sequence, output: Sequence, new_input: Sequence) -> int | None:
    """Where the new items of *new_input* begin, or None when it does not extend
    *sent* + *output* by at least one item.

    *sent* is the full input the socket sent for its last response, *output*
    that response's output items (items or :class:`Held` digests, either way).
    Reasoning items of the output may be absent from *new_input* (a Chat client
    cannot send them back; the backend still holds them); every other item must
    be there, in order.
    """
    n = len(sent)
    if len(new_input) <= n:
        return None
    for i in range(n):
        if _held(sent[i]) != _held(new_input[i]):
            return None
    j = n
    for out in output:
        out = _held(out)
        if j < len(new_input) and out == _held(new_input[j]):
            j += 1
        elif not out.reasoning:
            return None
    return j if j < len(new_input) else None


def delta(sent: Sequence, output: Sequence, new_input: Sequence) -> list | None:
    """The items to send after ``previous_response_id``, or None: send in full."""
    j = split(sent, output, new_input)
    return None if j is None else list(new_input[j:])


# -- one worker's pool ---------------------------------------------------------------------

class Conversation:
    """One upstream socket and what the backend holds on it."""

    __slots__ = ("socket", "key", "response_id", "sent", "output", "__weakref__")

    def __init__(self, sock, key: tuple):
        self.socket = sock
        self.key = key
        self.response_id: str | None = None
        self.sent: tuple = ()
        self.output: tuple = ()

    def remember(self, response_id, sent: Sequence[Held], output: Sequence) -> None:
        if isinstance(response_id, str) and response_id:
            self.response_id = response_id
            self.sent = tuple(sent)
            self.output = tuple(_held(i) for i in output)
        else:
            self.forget()

    def forget(self) -> None:
        self.response_id, self.sent, self.output = None, (), ()


class SocketPool:
    """Idle sockets by key, bounded in number and idle time (per worker).

    A socket is in the pool only while idle: ``checkout`` takes it out for one
    request, ``checkin`` puts it back when the response ended. A reaper thread
    (started with the first idle socket, gone when the pool is empty) closes
    expired sockets and pings the others so they stay open through proxies.
    """

    def __init__(self, max_sockets: int, idle_seconds: float, clock=time.monotonic):
        self.max_sockets = max_sockets
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._idle: OrderedDict[tuple, Conversation] = OrderedDict()
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._idle)

    def checkout(self, key: tuple) -> Conversation | None:
        """The idle socket for *key*, still open (probed if it was silent long), or None."""
        self.sweep()
        with self._lock:
            conv = self._idle.pop(key, None)
        if conv is None:
            return None
        sock = conv.socket
        if sock.closed or not sock.alive():
            sock.abort()
            return None
        if self.clock() - sock.last_heard > PROBE_AFTER \
                and not sock.probe(PROBE_WAIT):
            sock.abort()
            return None
        return conv

    def checkin(self, conv: Conversation) -> None:
        """Keep *conv* for its key's next turn (the newest socket of a key wins)."""
        if conv.socket.closed:
            return
        conv.socket.last_used = self.clock()
        closing = []
        with self._lock:
            old = self._idle.pop(conv.key, None)
            if old is not None and old is not conv:
                closing.append(old)
            self._idle[conv.key] = conv
            while len(self._idle) > self.max_sockets:
                closing.append(self._idle.popitem(last=False)[1])
            start = self._reaper is None or not self._reaper.is_alive()
        for c in closing:
            c.socket.close()
        if start:
            self._start_reaper()

    def sweep(self) -> int:
        """Close sockets idle for longer than ``idle_seconds``; how many."""
        limit = self.clock() - self.idle_seconds
        closing = []
        with self._lock:
            while self._idle:
                key, conv = next(iter(self._idle.items()))
                if conv.socket.last_used > limit:
                    break
                closing.append(self._idle.pop(key))
        for c in closing:
            c.socket.close(1001)
        return len(closing)

    def keepalive(self) -> None:
        """Ping idle sockets that were silent for a while; drop the dead ones."""
        now = self.clock()
        dead = []
        with self._lock:
            for key, conv in list(self._idle.items()):
                sock = conv.socket
                if not sock.alive():
                    dead.append(self._idle.pop(key))
                elif now - sock.last_heard >= REAP_EVERY:
                    try:
                        sock.ping()
                    except TransportError:
                        dead.append(self._idle.pop(key))
        for c in dead:
            c.socket.abort()

    def close_all(self) -> None:
        with self._lock:
            convs = list(self._idle.values())
            self._idle.clear()
        for c in convs:
            c.socket.close(1001)

    def _start_reaper(self) -> None:
        period = max(0.05, min(REAP_EVERY, self.idle_seconds / 2))

        def reap(pool: SocketPool) -> bool:
            pool.sweep()
            pool.keepalive()
            with pool._lock:
                if not pool._idle:
                    pool._reaper = None
                    return False  # nothing left to reap: the next checkin starts one
            return True

        thread = weak_loop(self, period, reap, "upstream-ws-reaper")
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper = thread
        thread.start()


# -- the HTTP fallback, shared by the workers ------------------------------------------------

class FallbackMarks:
    """Accounts whose backend refused the WebSocket: HTTP until a time.

    Kept in ``<state_dir>/upstream-websocket-fallback.json`` so one refusal
    keeps every worker on HTTP (re-read only when the file changed: one ``stat``
    per check). A lost write between two workers costs one more refused
    upgrade, never a request."""

    def __init__(self, path: Path, seconds: float, clock=time.time):
        self.path = Path(path)
        self.seconds = seconds
        self.clock = clock
        self._marks: dict[str, float] = {}
        self._stamp = None
        self._lock = threading.Lock()

    def active(self, account_id: str) -> bool:
        until = self._marks.get(account_id)
        if until is not None and until > self.clock():
            return True
        self._reload()
        until = self._marks.get(account_id)
        return until is not None and until > self.clock()

    def mark(self, account_id: str) -> None:
        with self._lock:
            self._reload()
            now = self.clock()
            marks = {k: v for k, v in self._marks.items() if v > now}
            marks[account_id] = now + self.seconds
            self._marks = marks
            try:
                private_dir(self.path.parent)
                atomic_write(self.path, json.dumps(marks))
                self._stamp = self._stat()
            except OSError:
                pass  # this worker still remembers; the others learn on their own

    def _stat(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            data = json.loads(self.path.read_text()) if stamp else {}
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            self._marks = {k: float(v) for k, v in data.items()
                           if isinstance(k, str) and isinstance(v, (int, float))}


# -- one answer over a socket ------------------------------------------------------------------

class Answer:
    """An upstream WebSocket answer, shaped like the HTTP client's response."""

    transport = "websocket"

    def __init__(self, status_code: int, headers=None, content: bytes = b"", reader=None):
        self.status_code = status_code
        self.headers = headers if headers is not None else CaseInsensitiveDict()
        self.content = content
        self._reader = reader

    def open_reader(self) -> "Reader":
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class Reader(transport.Relayable):
    """The events of one response on a socket, as SSE bytes (``transport.Reader``'s
    interface). At the terminal event the socket goes back to the pool, holding
    this response when it completed; closed before that (the client left, a
    timeout, a failover) it is closed, which stops the backend at once."""

    __slots__ = ("_pool", "_conv", "_first", "_prints", "_output", "_done", "_relayed",
                 "_tick", "_drained")

    def __init__(self, pool: SocketPool, conv: Conversation, first: str, prints: list):
        self._pool = pool
        self._conv = conv
        self._first = first
        self._prints = prints
        self._output = OutputCollector()
        self._done = self._relayed = self._tick = self._drained = False

    # -- relayed: a loop waits on the socket for this reader (gateway.relay) --------
    def relay_fd(self) -> int | None:
        if self._done or self._first is not None:
            return None
        try:
            return self._conv.socket.sock.fileno()
        except (OSError, AttributeError):
            return None

    def _next_relayed(self):
        early = self._relay_early()
        if early is not transport.READ:
            return early
        try:
            texts = self._conv.socket.receive_ready()
        except TransportError:
            self._done = True
            raise
        if texts is None:
            return transport.WAITING
        frames = []
        for text in texts:  # what one wake brought leaves in one write
            kind, frame = sse_frame(text)
            frames.append(frame)
            if kind == OUTPUT_ITEM_DONE or kind in TERMINAL:
                self._observe(kind, text)
                if self._done:
                    break  # the socket is back in the pool: what follows is not this answer's
        self._drained = True  # receive_ready reads until the socket is empty
        return b"".join(frames)

    def next(self, timeout: float):
        if self._done:
            return transport.EOF
        if self._relayed:
            return self._next_relayed()
        text, self._first = self._first, None
        if text is None:
            try:
                text = self._conv.socket.receive(timeout)
            except TransportError:
                self._done = True
                raise
            if text is None:
                return None
        kind, frame = sse_frame(text)
        if kind == OUTPUT_ITEM_DONE or kind in TERMINAL:
            self._observe(kind, text)
        return frame

    def _observe(self, kind: str, text: str) -> None:
        try:
            data = jsonio.loads(text)
        except ValueError:
            data = None
        output = self._output
        output.observe(kind, data if isinstance(data, dict) else None)
        if kind == OUTPUT_ITEM_DONE:
            return
        conv = self._conv
        if kind == COMPLETED:
            conv.remember(output.response_id, self._prints, output.output())
        else:
            conv.forget()
        self._done = True
        self._pool.checkin(conv)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._conv.socket.abort()


def sse_frame(text: str) -> tuple[str, bytes]:
    """One backend message as the SSE frame the HTTP stream would have carried."""
    match = _TYPE.match(text)
    if match:
        kind = match.group(1)
    else:
        try:
            data = jsonio.loads(text)
        except ValueError:
            data = None
        kind = data.get("type") if isinstance(data, dict) else None
        kind = kind if isinstance(kind, str) else ""
    if "\n" in text or "\r" in text:
        try:
            text = jsonio.dumps_text(jsonio.loads(text))
        except ValueError:
            text = text.replace("\r", "").replace("\n", "\ndata: ")
    head = f"event: {kind}\n" if kind else ""
    return kind, f"{head}data: {text}\n\n".encode()


# -- the transport: WebSocket first, HTTP when it cannot ---------------------------------------

class _Stale(Exception):
    """The socket failed before the backend answered anything."""


class CodexSockets:
    """The Codex backend over WebSocket for one worker (``upstream.codex_transport``)."""

    def __init__(self, ucfg, state_dir: Path):
        self.mode = ucfg.codex_transport.lower()
        self.pool = SocketPool(ucfg.websocket_max_sockets, ucfg.websocket_idle_seconds)
        self.fallback = FallbackMarks(Path(state_dir) / FALLBACK_FILE,
                                      ucfg.websocket_fallback_seconds)
        atexit.register(_close_pool, weakref.ref(self.pool))  # a worker's exit says goodbye

    def serves(self, account) -> bool:
        """Whether this request to *account* tries the WebSocket."""
        if self.mode == "http" or account.kind != "codex":
            return False
        return self.mode == "websocket" or not self.fallback.active(account.id)

    def post(self, account, profile, conversation: tuple, body: dict, headers: dict,
             timeout: tuple[float, float], prewarm: bool = False) -> Answer | None:
        """Send *body* on *conversation*'s socket to *account* (the conversation is
        the client principal and the continuity key: two clients never share a
        socket); None: send it over HTTP instead.

        *prewarm*: send it as Codex's ``generate: false`` (always in full, as
        Codex sends it first on a socket); the socket then holds its input for
        the next turn's delta. None means the same: it cannot go on a socket.

        Raises ``TransportError`` (``"websocket"`` mode) like ``transport.post``.
        """
        connect_timeout, read_timeout = timeout
        pkey = (account.id, *conversation)
        items = body.get("input") if isinstance(body.get("input"), list) else []
        prints = [hold(i) for i in items]
        conv = self.pool.checkout(pkey)
        for _ in range(2):
            fresh = conv is None
            if fresh:
                try:
                    sock = websocket.connect(profile.url(account), headers, connect_timeout,
                                             read_timeout)
                except websocket.Refused as refused:
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

    def falls_back(self, resp, account, failure) -> bool:
        """After a failure before the answer started: should HTTP serve it instead?"""
        if self.mode != "auto" or getattr(resp, "transport", None) != "websocket":
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
            return Answer(error["status"], CaseInsensitiveDict(extra), content)
        return Answer(200, conv.socket.headers if fresh else CaseInsensitiveDict(),
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


def refusal(refused: websocket.Refused) -> Answer:
    """A refused upgrade with ``codex_transport = "websocket"`` as the upstream's answer:
    the account's own refusals (401, 403, 429, 5xx) as they are, so a login is
    refreshed and a limit cools the account as over HTTP; any other status (426,
    404, …) says this backend does not take WebSockets: a 502 that says what to set."""
    status = refused.status
    if status in (401, 403, 429) or status >= 500:
        return Answer(status, refused.headers, refused.body)
    message = (f"The upstream refused the WebSocket upgrade (HTTP {status}); set "
               'upstream.codex_transport = "auto" or "http" to use HTTP.')
    return Answer(502, CaseInsensitiveDict(), jsonio.dumps(
        {"error": {"message": message, "type": "server_error",
                   "code": "upstream_websocket_refused"}}))
