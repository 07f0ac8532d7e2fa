"""gateway.upstream.answer
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The upstream's answer to one request, whichever wire carried it.

An error answer has its ``status``, ``headers`` and whole ``body`` (read once:
:func:`gateway.failures.from_http` reads it the same way for both wires); a
successful one has a ``reader`` of its events (the relay's reader contract,
:class:`gateway.relay.Relayable`): ``next(timeout)`` gives parsed events, None
(silence), ``EOF`` or, once relayed, ``WAITING``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(slots=True)
class Answer:
    status: int
    headers: Mapping
    transport: str                # "http" or "websocket": what the record says served it
    body: bytes = b""             # an error answer's body
    reader: object | None = None  # a successful answer's events

    @property
    def ok(self) -> bool:
        return self.status < 300

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
