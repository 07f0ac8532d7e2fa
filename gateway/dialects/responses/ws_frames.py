"""gateway.dialects.responses.ws_frames
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The Responses WebSocket dialect as Codex CLI speaks it, without any I/O.

Client frames are JSON text ``{"type": "response.create", ...}``: a Responses
request body, plus ``previous_response_id`` (see ``ws_memory``) and the prewarm
form ``generate: false``. Answers are the upstream's events, one JSON text frame
each; errors are ``{"type": "error", "status": N, "error": {...}}`` frames, the
shape Codex reads on a live connection (an HTTP status in a frame).

Turn-specific headers that Codex sends on every HTTP request travel in each
frame's ``client_metadata`` over WebSocket (the upgrade carries the prewarm's);
``frame_headers`` puts them back, so the upstream request of a WebSocket turn has
the headers of the same turn over HTTP.
"""
from __future__ import annotations

import time
import uuid

from ... import failures
from ...errors import GatewayError, bad_request
from ...jsonio import loads

CREATE = "response.create"
# Keys of the frame that are transport, not request (the upstream always streams).
TRANSPORT_KEYS = ("type", "stream", "generate", "previous_response_id")
# client_metadata entries that are request headers over HTTP (Codex 0.169/0.171).
FRAME_HEADERS = ("x-codex-turn-metadata", "x-codex-window-id")
TURN_STATE = "x-codex-turn-state"

def parse(text) -> dict:
    """A client frame as a dict; a 400 ``GatewayError`` that says what is wrong."""
    if not isinstance(text, str):
        raise bad_request("Binary WebSocket frames are not supported; send JSON text frames "
                          f"of type '{CREATE}'.", code="invalid_frame")
    try:
        frame = loads(text)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The WebSocket frame is not valid JSON; send a JSON object of type "
                          f"'{CREATE}'.", code="invalid_json") from None
    if not isinstance(frame, dict):
        raise bad_request(f"The WebSocket frame must be a JSON object of type '{CREATE}'.",
                          code="invalid_frame")
    kind = frame.get("type")
    if kind != CREATE:
        shown = kind if isinstance(kind, str) else repr(kind)
        raise bad_request(f"Unsupported WebSocket frame type {shown[:80]!r}: this gateway "
                          f"accepts '{CREATE}' frames.", param="type", code="unsupported_frame_type")
    generate = frame.get("generate")
    if generate is not None and not isinstance(generate, bool):
        raise bad_request("'generate' must be a boolean.", param="generate")
    return frame


def request_body(frame: dict, full_input) -> dict:
    """The Responses request of *frame*, with its full input and no transport keys."""
    body = {k: v for k, v in frame.items() if k not in TRANSPORT_KEYS}
    if full_input is not None:
        body["input"] = full_input
    return body


def is_prewarm(frame: dict) -> bool:
    return frame.get("generate") is False


def turn_id(frame: dict) -> str:
    meta = frame.get("client_metadata")
    value = meta.get("turn_id") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else ""


def frame_headers(frame: dict, turn_state: "TurnState | None" = None) -> dict[str, str]:
    """Headers this frame's upstream request carries on top of the upgrade's."""
    meta = frame.get("client_metadata")
    out = {}
    if isinstance(meta, dict):
        for name in FRAME_HEADERS:
            value = meta.get(name)
            if isinstance(value, str) and value and _header_safe(value):
                out[name] = value
    if turn_state is not None:
        value = turn_state.for_turn(turn_id(frame))
        if value:
            out[TURN_STATE] = value
    return out


class TurnState:
    """The upstream's sticky ``x-codex-turn-state``: Codex echoes it on the next
    request of the same turn (a tool follow-up) over HTTP and drops it at the next
    turn. Over WebSocket it never sees the upstream's headers, so the connection
    echoes it on Codex's behalf, by ``client_metadata.turn_id``."""

    def __init__(self) -> None:
        self._turn = ""
        self._value = ""

    def observe(self, turn: str, value: str | None) -> None:
        if turn and value:
            self._turn, self._value = turn, value

    def for_turn(self, turn: str) -> str:
        return self._value if turn and turn == self._turn else ""


def new_response_id() -> str:
    return "resp_gw" + uuid.uuid4().hex


def prewarm_events(response_id: str, model: str, now: float | None = None) -> list[dict]:
    """What a prewarm (``generate: false``) gets: a response that completes at once
    with no output and no usage, so the connection can continue from it without
    spending the user's quota."""
    response = {"id": response_id, "object": "response",
                "created_at": int(now if now is not None else time.time()),
                "status": "in_progress", "model": model, "output": [], "error": None,
                "incomplete_details": None, "usage": None}
    usage = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 0}
    return [{"type": "response.created", "sequence_number": 0, "response": response},
            {"type": "response.in_progress", "sequence_number": 1, "response": response},
            {"type": "response.completed", "sequence_number": 2,
             "response": {**response, "status": "completed", "usage": usage}}]


def error_frame(err: GatewayError) -> dict:
    """A ``GatewayError`` as the WebSocket error frame."""
    error = {"type": err.type, "code": err.code, "message": err.message}
    if err.param:
        error["param"] = err.param
    frame = {"type": "error", "status": err.status, "error": error}
    if err.retry_after is not None:
        frame["headers"] = {"retry-after": str(err.retry_after)}
    return frame


def error_event_frame(data: dict | None) -> dict:
    """An in-stream Responses ``error`` event (the upstream's, or the gateway's for
    a broken stream) as the WebSocket error frame, with the status the same
    failure has over HTTP before the first byte (one path: ``gateway.failures``)."""
    return error_frame(failures.client_error(failures.from_event(data)))


def _header_safe(value: str) -> bool:
    return "\r" not in value and "\n" not in value and "\0" not in value
