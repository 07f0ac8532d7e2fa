"""gateway.dialects.responses.events
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Responses events -> the client's SSE: the exact bytes the upstream sent
(no re-encoding on the hot path), a comment as keep-alive.
"""
from __future__ import annotations

from ...sse import KEEPALIVE


def frames(stream):
    """SSE frames for an open stream; closes it whatever happens."""
    try:
        for event in stream.events():
            yield KEEPALIVE if event is None else event.raw
    finally:
        stream.close()
