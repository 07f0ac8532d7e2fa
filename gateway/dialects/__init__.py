"""gateway.dialects
~~~~~~~~~~~~~~~~~~~~
One package per client dialect, each pure (no Flask, no I/O):

- ``request``: the client's body -> one normalised Responses request (all
  validation happens here, in one message style: :mod:`.validate`);
- ``events``: Responses events -> the client's frames;
- ``errors``: a ``GatewayError`` -> the client's error shape, as JSON before
  the first byte and as the dialect's error frame after it.

The OpenAI dialects (Responses, Chat Completions) word their 400s like
OpenAI does, through :mod:`.validate` (``Missing required parameter: 'x'.``).
Messages words them like Anthropic does (``messages[0].role: expected …``,
``<path>: <problem>``), in one place (``messages/request.py``'s ``_invalid``):
its clients (Claude Code, the Anthropic SDKs) show that text as the API's own,
and Messages refuses far less (unknown fields are dropped and reported, never
a 400), so it shares none of :mod:`.validate`'s checks.

A new dialect is a new folder here plus a thin blueprint in ``gateway.api``.
"""
