"""gateway.protocol
~~~~~~~~~~~~~~~~~~~
The Responses protocol's vocabulary, in one place (pure, no I/O).

Every wire (HTTP SSE, the backend's WebSocket, the client WebSocket) and every
dialect reads the same events: which types exist, which end an answer, where an
answer's output items are, what an error event says, and which HTTP status an
error code has. ``STATUS_BY_CODE`` is the one code -> status table: an error
answered over HTTP before the first byte, an error frame on a client WebSocket
and a dialect's in-stream error all derive their status (or type) from it
(``tests/inprocess/test_status_parity.py`` walks every code through every
transport).
"""
from __future__ import annotations

# -- event types -----------------------------------------------------------------------------
CREATED = "response.created"
IN_PROGRESS = "response.in_progress"
QUEUED = "response.queued"
COMPLETED = "response.completed"
INCOMPLETE = "response.incomplete"
FAILED = "response.failed"
ERROR = "error"
OUTPUT_ITEM_DONE = "response.output_item.done"
RATE_LIMITS = "codex.rate_limits"  # the backend's report of the account's quota

# Events that only announce a response (or report the account's quota); anything
# else means the answer started.
LIFECYCLE = frozenset({CREATED, IN_PROGRESS, QUEUED, RATE_LIMITS})
# Events that end an answer with a failure.
FAILURES = frozenset({FAILED, ERROR})
# Events that end an answer: nothing of it comes after one of these.
TERMINAL = frozenset({COMPLETED, INCOMPLETE, FAILED, ERROR})
# An answer that ended with one of these carries a final response object.
FINAL = frozenset({COMPLETED, INCOMPLETE})

# -- error codes -> HTTP status (in-stream codes have no status of their own) -----------------
STATUS_BY_CODE = {
    "context_length_exceeded": 400,
    "invalid_request": 400,
    "invalid_request_error": 400,
    "invalid_prompt": 400,
    "invalid_value": 400,
    "previous_response_not_found": 400,
    "moderation_blocked": 400,
    "usage_not_included": 403,
    "model_not_found": 404,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "usage_limit_reached": 429,
    "server_error": 502,
    "upstream_error": 502,
    "stream_truncated": 502,
    "upstream_unreachable": 502,
    "upstream_connection_lost": 502,
    "server_is_overloaded": 529,
    "overloaded": 529,
    "upstream_timeout": 504,
}
DEFAULT_STATUS = 502  # an unknown code: the upstream failed


def status_of(code: str | None) -> int:
    """The HTTP status an error code has (an unknown one: 502)."""
    return STATUS_BY_CODE.get(code or "", DEFAULT_STATUS)


def is_terminal(kind: str) -> bool:
    return kind in TERMINAL


def error_of(data: dict | None, kind: str | None = None) -> dict:
    """The error object of an ``error`` or ``response.failed`` event: ``error``'s
    nested ``error`` (or the event itself, its flat form), ``response.failed``'s
    ``response.error``; ``{}`` when there is none. *kind*: the event's type when
    the caller knows it (an SSE ``event:`` line), else the payload's ``type``."""
    if not isinstance(data, dict):
        return {}
    if (kind or data.get("type")) == FAILED:
        response = data.get("response")
        err = response.get("error") if isinstance(response, dict) else None
        return err if isinstance(err, dict) else {}
    nested = data.get("error")
    return nested if isinstance(nested, dict) else data


def code_of(data: dict | None) -> str | None:
    """The error code of an error event (None when it names none)."""
    code = error_of(data).get("code")
    return code if isinstance(code, str) else None


class OutputCollector:
    """One answer's output as the client saw it: the items of
    ``response.output_item.done`` by ``output_index``, else the final response's
    ``output``; and the answer's id and how it ended.

    ``observe`` only the types in ``WANTS`` (the others are ignored anyway)."""

    WANTS = frozenset({CREATED, OUTPUT_ITEM_DONE, COMPLETED, INCOMPLETE, FAILED})
    __slots__ = ("response_id", "outcome", "response", "_items")

    def __init__(self) -> None:
        self.response_id = ""
        self.outcome = ""      # "completed", "incomplete" or "failed" once it ended
        self.response: dict | None = None  # the final response object (completed/incomplete)
        self._items: dict[int, dict] = {}

    def observe(self, kind: str, data: dict | None) -> None:
        if not data:
            return
        if kind == OUTPUT_ITEM_DONE:
            index, item = data.get("output_index"), data.get("item")
            if isinstance(item, dict):
                self._items[index if isinstance(index, int) else len(self._items)] = item
            return
        response = data.get("response")
        if not isinstance(response, dict):
            return
        rid = response.get("id")
        if isinstance(rid, str) and rid:
            self.response_id = rid
        if kind in FINAL or kind == FAILED:
            self.outcome = kind.rpartition(".")[2]
            if kind in FINAL:
                self.response = response

    @property
    def continuable(self) -> bool:
        """A response a client may continue from (``previous_response_id``)."""
        return bool(self.response_id) and self.outcome in ("completed", "incomplete")

    def output(self) -> list:
        """The output items in order: as announced one by one, else the final ``output``."""
        if self._items:
            return [self._items[i] for i in sorted(self._items)]
        final = self.response.get("output") if self.response is not None else None
        return list(final) if isinstance(final, list) else []

    def final(self) -> dict | None:
        """The final response object, its ``output`` filled from the items when the
        upstream sent it empty (the Codex backend does); None before it ended."""
        final = self.response
        if final is not None and not final.get("output") and self._items:
            final["output"] = [self._items[i] for i in sorted(self._items)]
        return final
