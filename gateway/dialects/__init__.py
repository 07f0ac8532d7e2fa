"""gateway.dialects
~~~~~~~~~~~~~~~~~~~~
One package per client dialect, each pure (no Flask, no I/O):

- ``request``: the client's body -> one normalised Responses request (all
  validation happens here, in one message style: :mod:`.validate`);
- ``events``: Responses events -> the client's frames;
- ``errors``: a ``GatewayError`` -> the client's error shape, as JSON before
  the first byte and as the dialect's error frame after it.

A new dialect is a new folder here plus a thin blueprint in ``gateway.api``.
"""
