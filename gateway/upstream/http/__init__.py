"""gateway.upstream.http
~~~~~~~~~~~~~~~~~~~~~~~~~~
The upstream over HTTP: :mod:`.client` sends and reads the streamed body
(``requests``' and ``urllib3``'s failures translated at its boundary),
:mod:`.body` decodes the body's framing, :mod:`.wire` makes the exchange below
``requests``' adapter cheaper (urllib3 connection classes).
"""
from __future__ import annotations

from ..answer import Answer
from . import client

TRANSPORT = "http"


def send(url: str, body: dict, headers: dict, timeout: tuple[float, float],
         pool_maxsize: int = 16) -> Answer:
    """POST *body*; the answer (its events, or an error's whole body). Raises
    ``TransportError``."""
    resp = client.post(url, body, headers, timeout, pool_maxsize)
    if resp.status_code < 300:
        return Answer(resp.status_code, resp.headers, TRANSPORT, reader=client.Reader(resp))
    return Answer(resp.status_code, resp.headers, TRANSPORT, body=client.read_body(resp))
