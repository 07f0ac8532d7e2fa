"""gateway.dialects.responses.kept
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
One Responses turn as the response store sees it: made whole before it goes
upstream (:mod:`.chaining`), watched on its way back, completed to the Open
Responses shape (:mod:`.resource`) and kept.

* **before**: ``previous_response_id`` and ``item_reference`` are resolved from
  the client key's stored responses (unknown: the client's 400/404; the store
  unreachable: 503, never a guess);
* **on the way back**: a request that did not say ``store: false`` is kept when
  it completes (handed to the store's writer thread: the stream never waits);
  the response objects of the lifecycle events and of a non-streaming answer
  are filled to the 31 fields Open Responses requires. Codex CLI's requests
  (``store: false``, an ``originator: codex_*`` header) are neither kept nor
  filled: their bytes pass through exactly as the upstream sent them.
"""
from __future__ import annotations

import time
from collections.abc import Mapping

from ...errors import GatewayError
from ...jsonio import dumps_text
from ...protocol import OutputCollector as Collector
from ...responses_store import Stored, StateUnavailable
from ...sse import encode
from . import chaining, events, resource

# Events whose payload carries the response object.
WITH_RESPONSE = frozenset({"response.created", "response.in_progress", "response.queued",
                           "response.completed", "response.incomplete", "response.failed"})
FINAL = frozenset({"response.completed", "response.incomplete"})
STORE_RETRY_AFTER = 5


def is_codex_client(headers: Mapping) -> bool:
    """Codex CLI (and the Codex IDE extensions) name themselves in ``originator``."""
    return (headers.get("originator") or "").startswith("codex")


def store_unavailable(what: str) -> GatewayError:
    return GatewayError(
        503, f"The response store is unreachable, so {what} cannot be resolved now (the gateway "
        "will not guess). Retry shortly, or send the full input instead.",
        code="store_unavailable", retry_after=STORE_RETRY_AFTER)


def store_off() -> GatewayError:
    return GatewayError(
        400, "This gateway keeps no responses (responses.store = false), so "
        "previous_response_id and item_reference cannot be resolved. Send the full input.",
        param="previous_response_id", code="previous_response_not_found")


class Turn:
    """What the store does for one request: built before it goes upstream."""

    def __init__(self, body: dict, keeper, owner: str | None, headers: Mapping):
        self.keeper = keeper
        self.owner = owner or ""
        self.fields = resource.request_fields(body)
        self.model = body.get("model") if isinstance(body.get("model"), str) else ""
        codex = is_codex_client(headers)
        self.keep = keeper is not None and body.get("store") is not False
        self.conform = not codex
        self.own_input = self.resolve(body, keeper, self.owner)
        self.input = body.get("input") or []
        self.collector = Collector()

    @staticmethod
    def resolve(body: dict, keeper, owner: str) -> int:
        """Expand *body* from the store (see :mod:`.chaining`); the count of its own items."""
        items = body.get("input")
        if not chaining.needs_store(body):
            return len(items) if isinstance(items, list) else 0
        if keeper is None:
            raise store_off()

        def find_response(rid):
            stored = keeper.get(rid, owner)
            return (stored.input, stored.output) if stored is not None else None
        try:
            return chaining.expand(body, find_response, lambda iid: keeper.find_item(iid, owner))
        except StateUnavailable:
            raise store_unavailable("previous_response_id or item_reference") from None

    @property
    def watching(self) -> bool:
        return self.keep or self.conform

    # -- the answer ------------------------------------------------------------
    def frames(self, stream):
        """SSE frames of *stream* (``events.frames``), each event observed and the
        response objects filled; the response kept when it completes."""
        return events.frames(stream, self._frame)

    def _frame(self, event) -> bytes:
        kind = event.type
        if kind in Collector.WANTS:
            self.collector.observe(kind, event.data)
        if kind not in WITH_RESPONSE:
            return event.raw
        data = event.data
        response = data.get("response") if data else None
        if not isinstance(response, dict):
            return event.raw
        if kind in FINAL:
            self._keep(resource.fill(response, self.fields, self.collector.output()))
        elif self.conform:
            resource.fill(response, self.fields)
        if not self.conform:
            return event.raw
        return encode(dumps_text(data), kind)

    def final(self, response: dict) -> dict:
        """A non-streaming answer: filled and kept."""
        resource.fill(response, self.fields)
        if response.get("status") in ("completed", "incomplete"):
            self._keep(response)
        return response

    def keep_ws(self, collector: Collector, response: dict | None = None) -> None:
        """A client WebSocket turn that completed (its events already sent)."""
        if not (self.keep and collector.continuable):
            return
        response = response if response is not None else collector.response
        base = dict(response) if isinstance(response, dict) else {
            "id": collector.response_id, "status": collector.outcome, "model": self.model}
        self._keep(resource.fill(base, self.fields, collector.output()))

    def _keep(self, response: dict) -> None:
        rid = response.get("id")
        if not self.keep or not isinstance(rid, str) or not rid:
            return
        self.keeper.keep(Stored(rid, self.owner, time.time(), list(self.input),
                                self.own_input, response))
