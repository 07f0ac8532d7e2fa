"""gateway.relay
~~~~~~~~~~~~~~~~
One thread per worker process carries every open answer from its upstream
socket to its client socket: SSE answers, and the turns of client WebSockets
(whose frames the loop also reads meanwhile: :class:`Flow` ``on_readable``).

Why: with a thread per stream, each upstream packet wakes that stream's thread,
and the threads of a worker hand the GIL to each other: ``make bench`` counted
1.7 context switches and 1.3 futex calls per event, and ~44 µs of CPU per event
with one event per packet. One ``epoll`` loop waits on every stream's upstream
socket instead; a wake serves every stream that has data, and no other thread
runs in between.

The request thread keeps what it does well: it opens and primes the upstream,
and gunicorn sends the status line, the headers and the first events. Then
the request thread hands the rest over (the same frames generator gunicorn
would have iterated, the upstream socket, the client socket) and waits for the
end, when gunicorn writes the last chunk and keeps the connection as usual.
The dialects' renderers do not know who drives them: in a relayed stream the
reader never waits; it returns ``WAITING`` when its socket is empty and the loop
calls again when ``epoll`` says there is more (or when a keep-alive interval
passed: :meth:`gateway.stream.UpstreamStream.tick`).

Flow control: what the client's socket does not take is kept (one read's
worth), and the upstream socket is not read again until it drained, so the
upstream's TCP window holds the rest back. A client that takes nothing for the
stream's read timeout is dropped.

A client that goes away (``EPOLLRDHUP``/``EPOLLHUP``, a failed send) has its
answer closed at once: the frames generator is closed, which closes the
upstream answer and records ``client_closed``; the request thread then raises
``EPIPE`` so gunicorn closes the connection quietly.

The writes an answer's end asks for (the request record's sinks, an in-stream
limit's cooldown in the health store) are not the loop's to wait on: a store
that hangs (Redis unreachable: the link's timeout) would hold every stream of
the worker. The loop hands them to :class:`Later`, one thread per worker.

Linux only (``epoll``); :func:`available` says whether this process has it.
"""
from __future__ import annotations

import collections
import errno
import heapq
import itertools
import logging
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Iterator


log = logging.getLogger("gateway.relay")

# -- the reader contract the loop drives ------------------------------------------------
# A reader's ``next(timeout)`` returns what arrived (parsed events), None (nothing
# in *timeout*), EOF (the answer's body ended) or, once relayed, WAITING (the socket
# is empty: the loop waits on it and calls again).
EOF = object()
WAITING = object()
READ = object()  # Relayable._relay_early: nothing to say before reading the socket


class Relayable:
    """What makes a reader drivable by :mod:`gateway.relay` (the upstream HTTP body
    reader, the backend WebSocket's): ``relay()`` turns waiting off,
    ``tick()`` marks a keep-alive interval. Subclasses hold ``_relayed``, ``_tick``
    and ``_drained`` (the last read emptied the socket) in their slots."""

    __slots__ = ()

    def relay(self) -> None:
        """From now on ``next`` never waits: ``WAITING`` when the socket has
        nothing, ``None`` once after :meth:`tick` (a keep-alive interval passed)."""
        self._relayed = True

    def tick(self) -> None:
        self._tick = True

    def _relay_early(self):
        """``None`` after a tick, ``WAITING`` after a read that emptied the socket
        (asking again would only provoke an ``EAGAIN`` exception, ~2 µs), else ``READ``."""
        if self._tick:
            self._tick = False
            return None
        if self._drained:
            self._drained = False
            return WAITING
        return READ

# The worker sets this in the WSGI environ when the client socket is plain HTTP/1.1
# the relay may write to (gateway.workers.ThreadWorker).
ENVIRON_KEY = "codex_gateway.relay"

DONE = "done"
CLIENT_GONE = "client_gone"
FAILED = "failed"

_SEND_FLAGS = getattr(socket, "MSG_DONTWAIT", 0) | getattr(socket, "MSG_NOSIGNAL", 0)
_IN = getattr(select, "EPOLLIN", 1)
_OUT = getattr(select, "EPOLLOUT", 4)
_GONE = (getattr(select, "EPOLLRDHUP", 0x2000) | getattr(select, "EPOLLHUP", 0x10)
         | getattr(select, "EPOLLERR", 0x8))
_WATCH_CLIENT = getattr(select, "EPOLLRDHUP", 0x2000)


def available() -> bool:
    return hasattr(select, "epoll") and hasattr(os, "eventfd")


class Flow:
    """One relayed answer: who reads it, where it goes, and how it ended."""

    __slots__ = ("frames", "stream", "client", "chunked", "up_fd", "client_fd", "last",
                 "out", "out_since", "ending", "outcome", "done", "on_readable", "watch")

    def __init__(self, frames: Iterator[bytes], stream, client: socket.socket, chunked: bool,
                 up_fd: int, on_readable=None):
        self.frames = frames
        self.stream = stream
        self.client = client
        self.chunked = chunked
        self.up_fd = up_fd
        self.client_fd = client.fileno()
        # A client WebSocket's frames (pings, a close) are read while the answer
        # streams; *on_readable* reads them (and may answer a ping on the socket).
        self.on_readable = on_readable
        self.watch = _WATCH_CLIENT | (_IN if on_readable is not None else 0)
        self.last = time.monotonic()  # the upstream's last sign of life
        self.out = b""                # what the client's socket did not take yet
        self.out_since = 0.0
        self.ending = False           # the frames are over; the end waits for ``out``
        self.outcome = ""
        self.done = threading.Event()


LATER_LIMIT = 10_000  # end-of-answer writes waiting at most (then dropped, and said)


class Later:
    """Writes run on a thread of their own, in order (bounded: when the store is
    so slow that ``limit`` are waiting, new ones are dropped and a warning says so
    once per episode). The thread starts with the first write."""

    def __init__(self, limit: int = LATER_LIMIT) -> None:
        self._queue: queue.Queue = queue.Queue(limit)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._full = False
        self.dropped = 0

    def put(self, write) -> None:
        """Run *write* (a callable) soon, off the caller's thread."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="gateway-later",
                                                    daemon=True)
                    self._thread.start()
        try:
            self._queue.put_nowait(write)
            self._full = False
        except queue.Full:
            self.dropped += 1
            if not self._full:
                self._full = True
                log.warning("relay: %d end-of-answer writes are waiting (a store is slow or "
                            "unreachable); dropping new ones", self._queue.maxsize)

    def _run(self) -> None:
        get = self._queue.get
        while True:
            write = get()
            try:
                write()
            except Exception:  # noqa: BLE001 - one write's failure must not stop the others
                log.exception("relay: an end-of-answer write failed")


class Relay:
    """The loop; :meth:`carry` is called from request threads."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake, _IN)
        self._new: collections.deque[Flow] = collections.deque()
        self._fds: dict[int, tuple[Flow, bool]] = {}  # fd -> (flow, is the upstream)
        self._timers: list = []                       # (when, seq, flow), one per flow
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.flows = 0  # open relayed answers (read by tests and the bench)
        self.later = Later()  # what an answer's end writes, off the loop

    # -- request threads -----------------------------------------------------
    def carry(self, frames: Iterator[bytes], stream, client: socket.socket,
              chunked: bool, on_readable=None) -> str | None:
        """Relay the rest of *stream* (rendered by *frames*) to *client* and wait
        for its end: ``DONE``, ``CLIENT_GONE`` or ``FAILED``. None when the stream
        cannot be relayed (the caller goes on iterating *frames* itself).
        *on_readable*: called in the loop when the client sent something (it
        raises when the client is gone); without it the client is not read."""
        try:
            client.fileno()
        except OSError:
            return None
        up_fd = stream.relay(self.later.put)
        if up_fd is None:
            return None
        flow = Flow(frames, stream, client, chunked, up_fd, on_readable)
        self._start()
        self._new.append(flow)
        os.eventfd_write(self._wake, 1)
        flow.done.wait()
        return flow.outcome

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gateway-relay",
                                                daemon=True)
                self._thread.start()

    # -- the loop -------------------------------------------------------------
    def _run(self) -> None:
        poll = self._epoll.poll
        fds = self._fds
        while True:
            timers = self._timers
            timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else -1
            try:
                ready = poll(timeout)
            except InterruptedError:
                continue
            for fd, mask in ready:
                entry = fds.get(fd)
                if entry is None:
                    if fd == self._wake:
                        self._adopt()
                    continue
                flow, upstream = entry
                try:
                    if upstream:
                        self._pump(flow)
                    elif mask & _GONE:
                        self._gone(flow)
                    elif mask & _OUT:
                        self._drain(flow)
                    elif mask & _IN:
                        self._client_readable(flow)
                except Exception:  # noqa: BLE001 - one stream's bug must not stop the others
                    log.exception("relay: stream failed")
                    self._finish(flow, FAILED)
            if timers and timers[0][0] <= time.monotonic():
                self._expire()

    def _adopt(self) -> None:
        try:
            os.eventfd_read(self._wake)
        except BlockingIOError:
            pass
        while self._new:
            flow = self._new.popleft()
            self.flows += 1
            try:
                self._epoll.register(flow.up_fd, _IN)
                self._epoll.register(flow.client_fd, flow.watch)
            except OSError:
                self._finish(flow, FAILED)
                continue
            self._fds[flow.up_fd] = (flow, True)
            self._fds[flow.client_fd] = (flow, False)
            heapq.heappush(self._timers, (flow.last + flow.stream.tick_seconds,
                                          next(self._seq), flow))
            self._pump(flow)  # what the reader already holds, and what came meanwhile

    def _pump(self, flow: Flow) -> None:
        """Render what the upstream has for *flow* and send it in one write."""
        frames = flow.frames
        parts = []
        try:
            while True:
                item = next(frames)
                if item is WAITING:
                    break
                parts.append(item)
        except StopIteration:
            flow.ending = True
        except Exception:  # noqa: BLE001 - a renderer's bug ends this stream, not the loop
            log.exception("relay: a stream's frames failed")
            self._finish(flow, FAILED)
            return
        flow.last = time.monotonic()
        if parts:
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            self._send(flow, data)
        if flow.ending and not flow.out and not flow.outcome:
            self._finish(flow, DONE)

    def _send(self, flow: Flow, data: bytes) -> None:
        if flow.outcome:
            return
        if flow.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        if flow.out:
            flow.out += data
            return
        try:
            sent = flow.client.send(data, _SEND_FLAGS)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._gone(flow)
            return
        if sent < len(data):
            flow.out = data[sent:]
            flow.out_since = time.monotonic()
            # Read neither side until the client took this (nor the client's own frames:
            # an answer to its ping must not land in the middle of a frame).
            self._epoll.modify(flow.client_fd, _WATCH_CLIENT | _OUT)
            self._epoll.modify(flow.up_fd, 0)

    def _drain(self, flow: Flow) -> None:
        try:
            sent = flow.client.send(flow.out, _SEND_FLAGS)
        except BlockingIOError:
            return
        except OSError:
            self._gone(flow)
            return
        flow.out = flow.out[sent:]
        if flow.out:
            flow.out_since = time.monotonic()
            return
        if flow.ending:
            self._finish(flow, DONE)
            return
        self._epoll.modify(flow.client_fd, flow.watch)
        self._epoll.modify(flow.up_fd, _IN)

    def _client_readable(self, flow: Flow) -> None:
        try:
            flow.on_readable()
        except Exception:  # noqa: BLE001 - the client closed, went away or broke its protocol
            self._gone(flow)

    def _expire(self) -> None:
        """Keep-alive ticks for silent upstreams, and clients that stopped reading."""
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, _, flow = heapq.heappop(timers)
            if flow.outcome:
                continue
            interval = flow.stream.tick_seconds
            if flow.out:
                if now - flow.out_since >= flow.stream.read_timeout:
                    log.info("relay: the client took nothing for %.0f s; closing its stream",
                             now - flow.out_since)
                    self._gone(flow)
                    continue
                when = now + interval
            elif now - flow.last >= interval:
                flow.stream.tick()
                self._pump(flow)  # a keep-alive frame, or the read timeout's error
                when = now + interval
            else:
                when = flow.last + interval
            if not flow.outcome:
                heapq.heappush(timers, (when, next(self._seq), flow))

    def _gone(self, flow: Flow) -> None:
        self._finish(flow, CLIENT_GONE)

    def _finish(self, flow: Flow, outcome: str) -> None:
        """Forget *flow*'s sockets first (the upstream one may go back to the pool,
        its number to another socket), then end its frames and wake its thread."""
        if flow.outcome:
            return
        flow.outcome = outcome
        for fd in (flow.up_fd, flow.client_fd):
            if self._fds.get(fd, (None,))[0] is flow:
                del self._fds[fd]
                try:
                    self._epoll.unregister(fd)
                except (OSError, ValueError):
                    pass  # closed already (the kernel forgot it) or never registered
        self.flows -= 1
        try:
            flow.frames.close()  # runs the renderer's finally: the upstream answer closes
        except Exception:  # noqa: BLE001
            log.exception("relay: closing a stream failed")
        # Its timer entry stays in the heap until due (up to a keep-alive interval):
        # it must not keep the answer's buffers alive that long.
        flow.frames = flow.stream = flow.client = None
        flow.out = b""
        flow.done.set()


class Body:
    """The WSGI body of a relayed SSE answer. gunicorn iterates it: the first
    frames go through gunicorn (with the status line and the headers), then the
    second ``next`` hands the rest to the relay and returns when the answer is
    over, and gunicorn ends the chunked body as usual. Where the relay cannot
    take the stream, the frames go on through gunicorn."""

    __slots__ = ("_frames", "_stream", "_relay", "_client", "_chunked", "_started")

    def __init__(self, frames: Iterator[bytes], stream, relay: Relay, client: socket.socket,
                 chunked: bool = True):
        self._frames = frames
        self._stream = stream
        self._relay = relay
        self._client = client
        self._chunked = chunked
        self._started = False

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if not self._started:
            self._started = True
            return next(self._frames)
        relay, self._relay = self._relay, None
        if relay is not None:
            outcome = relay.carry(self._frames, self._stream, self._client, self._chunked)
            if outcome == DONE:
                raise StopIteration
            if outcome is not None:  # gone or failed: the body is cut, close the connection
                raise broken_pipe()
        return next(self._frames)

    def close(self) -> None:
        self._frames.close()


_shared: Relay | None = None
_shared_pid = 0
_shared_lock = threading.Lock()


def shared() -> Relay | None:
    """This process's relay (made on first use, after gunicorn forked), or None
    where there is no epoll."""
    global _shared, _shared_pid
    pid = os.getpid()
    if _shared is not None and _shared_pid == pid:
        return _shared
    if not available():
        return None
    with _shared_lock:
        if _shared is None or _shared_pid != pid:
            _shared, _shared_pid = Relay(), pid
    return _shared


def broken_pipe() -> BrokenPipeError:
    """What the request thread raises when its client went away during the relay:
    gunicorn closes such a connection without a log line."""
    return BrokenPipeError(errno.EPIPE, "the client went away")
