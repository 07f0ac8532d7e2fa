"""gateway.upstream.ws.reader
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The events of one response on a conversation's socket, read as the HTTP body
reader reads them (the relay's reader contract: :class:`gateway.relay.Relayable`):
``next(timeout)`` gives parsed events, None (silence) or ``EOF``. Each backend
message is one event (its SSE bytes are made only if the Responses pass-through
asks). At the terminal event the socket goes back to the pool, holding this
response when it completed.
"""
from __future__ import annotations

import re

from ...errors import TransportError
from ...protocol import COMPLETED, OUTPUT_ITEM_DONE, TERMINAL, OutputCollector
from ...relay import EOF, READ, WAITING, Relayable
from ...sse import Event
from .pool import Conversation, SocketPool

_TYPE = re.compile(r'\{\s*"type"\s*:\s*"([^"\\]*)"')


class Reader(Relayable):
    """The events of one response on a socket. At the terminal event the socket
    goes back to the pool, holding this response when it completed; closed before
    that (the client left, a timeout, a failover) it is closed, which stops the
    backend at once."""

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
        if early is not READ:
            return early
        try:
            texts = self._conv.socket.receive_ready()
        except TransportError:
            self._done = True
            raise
        if texts is None:
            return WAITING
        events = []
        for text in texts:  # what one wake brought leaves in one write
            event = event_of(text)
            events.append(event)
            kind = event.name
            if kind == OUTPUT_ITEM_DONE or kind in TERMINAL:
                self._observe(event)
                if self._done:
                    break  # the socket is back in the pool: what follows is not this answer's
        self._drained = True  # receive_ready reads until the socket is empty
        return events

    def next(self, timeout: float):
        if self._done:
            return EOF
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
        event = event_of(text)
        kind = event.name
        if kind == OUTPUT_ITEM_DONE or kind in TERMINAL:
            self._observe(event)
        return [event]

    def _observe(self, event: Event) -> None:
        kind = event.name
        output = self._output
        output.observe(kind, event.data)
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


def event_of(text: str) -> Event:
    """One backend message as an event (its type read without parsing the JSON
    when it leads, as the backend writes it)."""
    match = _TYPE.match(text)
    if match:
        return Event(match.group(1), text)
    event = Event("", text)
    event.name = event.type  # parsed: the type is further in (or there is none)
    return event
