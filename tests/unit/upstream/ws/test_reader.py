"""A backend WebSocket message as the event the HTTP stream would carry."""
from __future__ import annotations

import pytest

from gateway.upstream.ws.reader import event_of


@pytest.mark.parametrize("text,kind", [
    ('{"type":"response.created","response":{}}', "response.created"),
    ('{"type": "response.output_text.delta", "delta": "x"}', "response.output_text.delta"),
    ('{"sequence_number":1,"type":"response.completed"}', "response.completed"),
    ('{"type":"error","status":400,"error":{}}', "error"),
])
def test_a_backend_message_becomes_the_event_http_would_carry(text, kind):
    event = event_of(text)
    assert (event.type, event.data_text) == (kind, text)
    assert event.raw == f"event: {kind}\ndata: {text}\n\n".encode()


def test_a_message_with_newlines_stays_one_sse_frame():
    event = event_of('{"type": "response.created",\n "response": {}}')
    assert event.type == "response.created"
    assert event.raw == b'event: response.created\ndata: {"type":"response.created","response":{}}\n\n'


def test_a_message_whose_type_is_not_first_is_still_typed():
    event = event_of('{"sequence_number": 1, "type": "response.completed"}')
    assert event.name == "response.completed"
    assert event_of("not json").type == ""
