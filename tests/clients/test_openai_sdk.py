"""The OpenAI Python SDK through nginx (TLS and plain), streaming and not, both endpoints."""
from __future__ import annotations

import openai
import pytest

from tests.support import CLIENT_KEY

from .clients import HELLO


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_sdk_responses_and_chat_through_nginx(stack, fresh, scheme):
    if scheme == "https":
        client = openai.OpenAI(base_url=stack.nginx.tls_url + "/v1", api_key=CLIENT_KEY,
                               http_client=openai.DefaultHttpxClient(verify=stack.nginx.ssl_context()))
    else:
        client = openai.OpenAI(base_url=stack.url + "/v1", api_key=CLIENT_KEY)
    with client.responses.stream(model="gpt-5-codex", input="Say hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == HELLO and final.output_text == HELLO
    resp = client.responses.create(model="gpt-5-codex", input="Say hello")
    assert resp.output_text == HELLO
    chat = client.chat.completions.create(
        model="gpt-5-codex", messages=[{"role": "user", "content": "Say hello"}])
    assert chat.choices[0].message.content == HELLO
    chunks = client.chat.completions.create(
        model="gpt-5-codex", messages=[{"role": "user", "content": "Say hello"}], stream=True,
        stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == HELLO
    assert "gpt-5-codex" in [m.id for m in client.models.list()]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=stack.url + "/v1", api_key="wrong").models.list()
    assert len(fresh.requests) == 4


def test_sdk_chains_retrieves_lists_input_items_and_deletes(gateway, fresh):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY)
    first = client.responses.create(model="gpt-5-codex", input="[[say:one]] first question")
    second = client.responses.create(model="gpt-5-codex", input="[[say:two]] second question",
                                     previous_response_id=first.id)
    assert second.output_text == "two" and second.previous_response_id == first.id
    sent = fresh.requests[-1]["body"]["input"]
    assert len(sent) == 3 and "previous_response_id" not in fresh.requests[-1]["body"]
    got = client.responses.retrieve(second.id)
    assert got.id == second.id and got.output_text == "two"
    items = client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in items.data] == ["[[say:two]] second question"]
    pages = list(client.responses.input_items.list(first.id, limit=1, order="asc"))
    assert [i.content[0].text for i in pages] == ["[[say:one]] first question"]
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="gpt-5-codex", input="x", previous_response_id=first.id)
    assert exc.value.code == "previous_response_not_found"
