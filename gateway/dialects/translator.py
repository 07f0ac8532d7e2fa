"""gateway.dialects.translator
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
What every translated dialect's event renderer shares: dispatch of parsed
Responses events to per-type handlers, and the loop that turns an open stream
into the client's frames.

Malformed or unknown events are ignored rather than raised: one odd frame must
not kill a long answer. Once the translator is ``done`` (the answer ended, at
an emulated stop sequence too) the loop stops reading the upstream.
"""
from __future__ import annotations

from ..record import Outcome
from ..sse import KEEPALIVE, Event
from ..relay import WAITING


class Translator:
    """Base renderer: subclasses set ``HANDLERS`` ({event type: method}) and ``close``."""

    __slots__ = ()
    HANDLERS: dict = {}
    done: bool

    def feed(self, event: Event) -> list[bytes]:
        """Frames for one upstream event; ``[]`` for ignorable ones."""
        if self.done:
            return []
        handler = self.HANDLERS.get(event.type)
        if handler is None:
            return []
        data = event.data
        if data is None:
            return []
        try:
            return handler(self, data)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            return []  # malformed payload: drop the event, keep the stream

    def close(self) -> list[bytes]:  # pragma: no cover - every dialect has its own
        raise NotImplementedError

    def tick(self) -> bytes:
        """What to send while the upstream is silent: an SSE comment by default."""
        return KEEPALIVE


def frames(stream, translator: Translator):
    """The client's frames for an open stream; closes the stream whatever happens.

    When the translator finishes before the upstream did (an emulated stop
    sequence), the upstream is not read further and the outcome says so.
    """
    outcome = None
    feed = translator.feed
    try:
        for batch in stream.batches():
            if batch is WAITING:  # relayed: nothing yet (gateway.relay calls again)
                yield WAITING
                continue
            if batch is None:
                tick = translator.tick()
                if tick:
                    yield tick
                continue
            out = []
            for event in batch:  # what was read together is written together
                out += feed(event)
                if translator.done:
                    break
            if out:
                yield b"".join(out)
            if translator.done:
                outcome = Outcome.STOP_SEQUENCE if stream.outcome is Outcome.OPEN else None
                break
        tail = translator.close()
        if tail:
            yield b"".join(tail)
    finally:
        stream.close(outcome)
