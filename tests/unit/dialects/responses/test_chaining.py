"""The pure halves of the response store: expanding a request (chaining), completing a
response object and paging input items (resource)."""
from __future__ import annotations

import pytest

from gateway.dialects.responses import chaining, resource
from gateway.errors import GatewayError
from tests.support import open_responses_errors

U1, U2 = {"role": "user", "content": "one"}, {"role": "user", "content": "two"}
RS = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "enc"}
MSG = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
       "content": [{"type": "output_text", "text": "hi", "annotations": []}]}
STORE = {"resp_1": ([U1], [RS, MSG])}
ITEMS = {"rs_1": RS, "msg_1": MSG}


def expand(body):
    return chaining.expand(body, STORE.get, ITEMS.get)


def test_previous_input_then_output_then_new_input():
    body = {"input": [U2], "previous_response_id": "resp_1"}
    assert chaining.needs_store(body) and expand(body) == 1
    assert body == {"input": [U1, RS, MSG, U2]}


def test_references_become_their_items_in_place():
    body = {"input": [U1, {"type": "item_reference", "id": "rs_1"},
                      {"type": "item_reference", "id": "msg_1"}, U2]}
    assert chaining.needs_store(body) and expand(body) == 4
    assert body["input"] == [U1, RS, MSG, U2]
    assert not chaining.needs_store({"input": [U1]})


@pytest.mark.parametrize("body, status, code", [
    ({"input": [U1], "previous_response_id": "resp_other"}, 400, "previous_response_not_found"),
    ({"input": [U1], "previous_response_id": ""}, 400, "invalid_type"),
    ({"input": [{"type": "item_reference", "id": "rs_other"}]}, 404, "item_not_found"),
    ({"input": [{"type": "item_reference"}]}, 400, "invalid_value"),
])
def test_what_cannot_be_resolved_is_the_clients_error(body, status, code):
    with pytest.raises(GatewayError) as err:
        expand(body)
    assert (err.value.status, err.value.code) == (status, code)


def test_a_codex_response_object_is_completed_to_the_open_responses_shape():
    upstream = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-5.5",
                "status": "completed", "output": [RS, MSG], "usage": None}
    sent = {"model": "gpt-5.5", "input": [U1], "temperature": 0, "store": True,
            "tools": [{"type": "function", "name": "f"}], "reasoning": {"effort": "low"},
            "previous_response_id": "resp_0", "metadata": {"a": "b"}}
    filled = resource.fill(dict(upstream), resource.request_fields(sent))
    assert open_responses_errors(filled) == []
    assert filled["temperature"] == 0.0 and filled["previous_response_id"] == "resp_0"
    assert filled["tools"][0] == {"type": "function", "name": "f", "description": None,
                                  "parameters": None, "strict": True}
    assert filled["reasoning"] == {"effort": "low", "summary": None}
    assert filled["completed_at"] and filled["model"] == "gpt-5.5"
    bare = resource.fill({"id": "r", "status": "in_progress", "model": "m", "created_at": 1},
                         resource.request_fields({}))
    assert open_responses_errors(bare) == [] and bare["completed_at"] is None


def test_input_items_pages_like_openai():
    items = [{"id": f"m{i}", "role": "user", "content": str(i)} for i in range(5)]
    page = resource.input_items("r", items, {"limit": "2"})
    assert [i["id"] for i in page["data"]] == ["m4", "m3"] and page["has_more"]
    page = resource.input_items("r", items, {"limit": "2", "after": "m3"})
    assert [i["id"] for i in page["data"]] == ["m2", "m1"]
    page = resource.input_items("r", items, {"order": "asc", "before": "m2"})
    assert [i["id"] for i in page["data"]] == ["m0", "m1"] and not page["has_more"]
    assert resource.input_items("r", [U1], {})["data"][0]["id"] == "item_r_0"
    for args in ({"limit": "0"}, {"limit": "x"}, {"order": "up"}, {"after": "nope"}):
        with pytest.raises(GatewayError) as err:
            resource.input_items("r", items, args)
        assert err.value.status == 400
