"""gateway.dialects.responses.events
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Responses events -> the client's SSE: the exact bytes the upstream sent
(no re-encoding on the hot path), a comment as keep-alive.
"""
from __future__ import annotations

from ...sse import KEEPALIVE
from ...relay import WAITING


def frames(stream, render=None):
    """SSE frames for an open stream, one write per upstream read; closes it
    whatever happens. ``WAITING`` passes through (a relayed stream has nothing yet).
    *render* (an event -> its bytes) replaces the upstream's bytes when given."""
    try:
        for batch in stream.batches():
            if batch is WAITING:
                yield WAITING
            elif batch is None:
                yield KEEPALIVE
            elif render is not None:
                yield b"".join([render(event) for event in batch])
            elif len(batch) == 1:
                yield batch[0].raw
            else:
                yield b"".join([event.raw for event in batch])
    finally:
        stream.close()
