"""The response store through the app: previous_response_id, item_reference, the
stored-response routes, key isolation and the store switched off."""
from __future__ import annotations

import pytest

from tests.support import CLIENT_KEY, parse_sse, register_secret

RESP = "/v1/responses"
MODEL = "gpt-5.5"
OTHER_KEY = register_secret("test-client-key-other-9876543210")


@pytest.fixture
def gw(make_client):
    return make_client(auth_client_keys=f"{CLIENT_KEY},{OTHER_KEY}")


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def create(gw, body, key=CLIENT_KEY, stream=False):
    resp = gw.post(RESP, {"model": MODEL, **body, **({"stream": True} if stream else {})},
                   key=key)
    if stream:
        events, _ = parse_sse(resp.get_data())
        return resp, events
    return resp, resp.get_json()


def flush(gw):
    assert gw.app.extensions["gateway"].responses_store.flush()


def get(gw, path, key=CLIENT_KEY, method="GET"):
    return gw.client.open(path, method=method, headers={"Authorization": f"Bearer {key}"})


def test_previous_response_id_sends_the_whole_history_upstream(gw, upstream):
    _, first = create(gw, {"input": "[[say:one]]", "instructions": "be brief"})
    assert first["status"] == "completed" and first["store"] is True
    resp, second = create(gw, {"input": [user("[[say:two]]")],
                               "previous_response_id": first["id"]})
    assert resp.status_code == 200, second
    sent = upstream.requests[-1]["body"]
    assert "previous_response_id" not in sent and sent["store"] is False
    assert sent["input"] == [user("[[say:one]]"), *first["output"], user("[[say:two]]")]
    assert second["previous_response_id"] == first["id"]
    assert second["output"][0]["content"][0]["text"] == "two"


def test_a_streamed_chain_keeps_every_turn(gw, upstream):
    prev = None
    for n in range(3):
        body = {"input": [user(f"[[say:turn {n}]]")]}
        if prev:
            body["previous_response_id"] = prev
        resp, events = create(gw, body, stream=True)
        assert resp.status_code == 200
        final = [e for e in events if e.type == "response.completed"][0].data["response"]
        prev = final["id"]
    sent = upstream.requests[-1]["body"]["input"]
    texts = [i["content"][0]["text"] for i in sent if i.get("role") == "user"]
    assert texts == ["[[say:turn 0]]", "[[say:turn 1]]", "[[say:turn 2]]"]
    assert len(sent) == 5  # three user messages, two answers


def test_item_references_are_replaced_by_the_items_they_name(gw, upstream):
    _, first = create(gw, {"input": "[[say:hi]]", "reasoning": {"effort": "low",
                                                                 "summary": "auto"}})
    reasoning, message = first["output"]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    refs = [{"type": "item_reference", "id": reasoning["id"]},
            {"type": "item_reference", "id": message["id"]}]
    resp, _ = create(gw, {"input": [user("[[say:a]]"), *refs, user("[[say:b]]")]})
    assert resp.status_code == 200
    sent = upstream.requests[-1]["body"]["input"]
    assert sent == [user("[[say:a]]"), reasoning, message, user("[[say:b]]")]


def test_an_unknown_item_reference_is_a_404_naming_it(gw, upstream):
    before = len(upstream.requests)
    resp, body = create(gw, {"input": [{"type": "item_reference", "id": "rs_nope"}]})
    assert resp.status_code == 404 and "rs_nope" in body["error"]["message"]
    assert body["error"]["code"] == "item_not_found"
    assert len(upstream.requests) == before


def test_unknown_previous_response_is_openais_400(gw, upstream):
    before = len(upstream.requests)
    resp, body = create(gw, {"input": "x", "previous_response_id": "resp_unknown"})
    assert resp.status_code == 400
    assert body["error"] == {"message": "Previous response with id 'resp_unknown' not found.",
                             "type": "invalid_request_error", "param": "previous_response_id",
                             "code": "previous_response_not_found"}
    assert len(upstream.requests) == before


def test_retrieve_delete_and_input_items(gw):
    _, first = create(gw, {"input": [user("[[say:a]]"), user("[[say:b]]")]})
    _, second = create(gw, {"input": [user("[[say:c]]")], "previous_response_id": first["id"]})
    flush(gw)
    got = get(gw, f"{RESP}/{second['id']}")
    assert got.status_code == 200 and got.get_json() == second
    items = get(gw, f"{RESP}/{first['id']}/input_items?order=asc&limit=1").get_json()
    assert items["object"] == "list" and items["has_more"] is True
    assert items["data"][0]["content"] == user("[[say:a]]")["content"]
    rest = get(gw, f"{RESP}/{first['id']}/input_items?order=asc&after={items['last_id']}")
    assert [i["content"][0]["text"] for i in rest.get_json()["data"]] == ["[[say:b]]"]
    own = get(gw, f"{RESP}/{second['id']}/input_items").get_json()["data"]
    assert [i["content"][0]["text"] for i in own] == ["[[say:c]]"]  # its own input only
    also = get(gw, f"/backend-api/codex/responses/{first['id']}")
    assert also.status_code == 200
    gone = get(gw, f"{RESP}/{first['id']}", method="DELETE")
    assert gone.get_json() == {"id": first["id"], "object": "response", "deleted": True}
    assert get(gw, f"{RESP}/{first['id']}").status_code == 404
    assert get(gw, f"{RESP}/{first['id']}", method="DELETE").status_code == 404


def test_cancel_is_a_clear_error_and_input_tokens_an_estimate(gw):
    _, first = create(gw, {"input": "[[say:a]]"})
    flush(gw)
    resp = gw.post(f"{RESP}/{first['id']}/cancel", {})
    assert resp.status_code == 400 and "background" in resp.get_json()["error"]["message"]
    assert gw.post(f"{RESP}/resp_nope/cancel", {}).status_code == 404
    count = gw.post(f"{RESP}/input_tokens", {"model": MODEL, "input": "hello " * 100})
    body = count.get_json()
    assert body["object"] == "response.input_tokens" and 100 <= body["input_tokens"] <= 200


def test_another_key_sees_nothing_of_the_first_keys_responses(gw, upstream):
    _, first = create(gw, {"input": "[[say:mine]]", "reasoning": {"effort": "low"}})
    flush(gw)
    rid, item = first["id"], first["output"][0]["id"]
    before = len(upstream.requests)
    for method, path in (("GET", f"{RESP}/{rid}"), ("GET", f"{RESP}/{rid}/input_items"),
                         ("DELETE", f"{RESP}/{rid}")):
        resp = get(gw, path, key=OTHER_KEY, method=method)
        mine = get(gw, f"{RESP}/resp_never_existed", key=OTHER_KEY, method=method)
        assert resp.status_code == 404 and \
            resp.get_json()["error"]["message"] == f"Response with id '{rid}' not found."
        assert mine.status_code == 404  # the same answer as for an id that never existed
    resp, body = create(gw, {"input": "x", "previous_response_id": rid}, key=OTHER_KEY)
    assert resp.status_code == 400 and body["error"]["code"] == "previous_response_not_found"
    resp, body = create(gw, {"input": [{"type": "item_reference", "id": item}]}, key=OTHER_KEY)
    assert resp.status_code == 404 and body["error"]["code"] == "item_not_found"
    assert len(upstream.requests) == before
    assert get(gw, f"{RESP}/{rid}").status_code == 200  # still there for its owner


def test_store_false_keeps_nothing(gw):
    _, first = create(gw, {"input": "x", "store": False})
    assert first["store"] is False
    flush(gw)
    assert get(gw, f"{RESP}/{first['id']}").status_code == 404


def test_store_off_globally_keeps_nothing_and_chaining_says_so(make_client, upstream):
    gw = make_client(responses_store="false")
    assert gw.app.extensions["gateway"].responses_store is None
    _, first = create(gw, {"input": "x"})
    resp, body = create(gw, {"input": "y", "previous_response_id": first["id"]})
    assert resp.status_code == 400 and body["error"]["code"] == "previous_response_not_found"
    assert "responses.store = false" in body["error"]["message"]
    assert get(gw, f"{RESP}/{first['id']}").status_code == 404


def test_a_system_message_reaches_the_backend_as_developer(gw, upstream):
    resp, body = create(gw, {"input": [{"type": "message", "role": "system",
                                        "content": "be brief"}, user("hi")]})
    assert resp.status_code == 200, body
    assert upstream.requests[-1]["body"]["input"][0]["role"] == "developer"


def test_codex_cli_requests_pass_through_unfilled(gw, upstream):
    body = {"input": [user("hi")], "store": False, "stream": True}
    resp = gw.post(RESP, {"model": MODEL, **body}, headers={"originator": "codex_exec"})
    events, _ = parse_sse(resp.get_data())
    final = events[-1].data["response"]
    assert "tools" not in final and "store" not in final  # exactly as the upstream sent it
