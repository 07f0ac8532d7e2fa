"""gateway.dialects.responses.events
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Responses events -> the client's SSE: the exact bytes the upstream sent
(no re-encoding on the hot path), a comment as keep-alive.
"""
from __future__ import annotations

from ...sse import KEEPALIVE
from ...relay import WAITING


def frames(stream):
    """SSE frames for an open stream, one write per upstream read; closes it
    whatever happens. ``WAITING`` passes through (a relayed stream has nothing yet)."""
    try:
        for batch in stream.batches():
            if batch is WAITING:
                yield WAITING
            elif batch is None:
                yield KEEPALIVE
            elif len(batch) == 1:
                yield batch[0].raw
            else:
                yield b"".join([event.raw for event in batch])
    finally:
        stream.close()
