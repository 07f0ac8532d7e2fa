"""gateway.protocol: terminal detection, the error reader, the one output collector."""
from __future__ import annotations

import pytest

from gateway import protocol
from gateway.protocol import OutputCollector


def test_terminal_and_lifecycle_are_disjoint():
    assert protocol.is_terminal("response.completed") and protocol.is_terminal("error")
    assert not protocol.is_terminal("response.output_text.delta")
    assert not protocol.LIFECYCLE & protocol.TERMINAL


ERRORS = [
    ({"type": "error", "code": "c", "message": "m"}, None, {"type": "error", "code": "c",
                                                            "message": "m"}),
    ({"type": "error", "error": {"code": "c"}}, None, {"code": "c"}),
    ({"type": "response.failed", "response": {"error": {"code": "c"}}}, None, {"code": "c"}),
    ({"type": "response.failed", "response": {}}, None, {}),
    ({"response": {"error": {"code": "c"}}}, "response.failed", {"code": "c"}),
    (None, None, {}),
]


@pytest.mark.parametrize("data,kind,payload", ERRORS)
def test_error_of_reads_every_shape(data, kind, payload):
    assert protocol.error_of(data, kind) == payload


def test_status_of_unknown_code_is_502():
    assert protocol.status_of("nope") == 502 and protocol.status_of(None) == 502
    assert protocol.status_of("usage_not_included") == 403


def _collect(events):
    c = OutputCollector()
    for kind, data in events:
        if kind in c.WANTS:
            c.observe(kind, data)
    return c


ITEM_A = {"type": "reasoning", "id": "rs_1"}
ITEM_B = {"type": "function_call", "id": "fc_1"}


def test_collector_keeps_output_items_in_output_order():
    c = _collect([("response.created", {"response": {"id": "resp_1"}}),
                  ("response.output_item.done", {"output_index": 1, "item": ITEM_B}),
                  ("response.output_item.done", {"output_index": 0, "item": ITEM_A}),
                  ("response.output_text.delta", {"delta": "x"}),
                  ("response.completed", {"response": {"id": "resp_1", "output": []}})])
    assert c.continuable and c.response_id == "resp_1" and c.output() == [ITEM_A, ITEM_B]


def test_collector_falls_back_to_the_final_output_and_refuses_failures():
    c = _collect([("response.completed", {"response": {"id": "r", "output": [ITEM_A]}})])
    assert c.continuable and c.output() == [ITEM_A]
    failed = _collect([("response.created", {"response": {"id": "r"}}),
                       ("response.failed", {"response": {"id": "r"}})])
    assert not failed.continuable and failed.outcome == "failed"
    assert not _collect([("response.created", {"response": {"id": "r"}})]).continuable
    assert not _collect([("response.completed", None)]).continuable


def test_final_fills_an_empty_output_from_the_items():
    c = _collect([("response.output_item.done", {"output_index": 0, "item": ITEM_A}),
                  ("response.completed", {"response": {"id": "r", "output": []}})])
    assert c.final() == {"id": "r", "output": [ITEM_A]}
    assert OutputCollector().final() is None
