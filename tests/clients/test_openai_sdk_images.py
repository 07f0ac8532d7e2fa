"""The OpenAI Python SDK's images API through nginx and gunicorn (2 workers) to the fake."""
from __future__ import annotations

import base64
import io

import openai

from tests.fakes.codex_answers import fake_png
from tests.support import CLIENT_KEY

PNG = b"\x89PNG\r\n\x1a\n"


def valid_png(b64: str) -> bool:
    data = base64.b64decode(b64)
    return data.startswith(PNG) and data.endswith(b"IEND\xaeB`\x82")


def test_generate_two_images(stack, fresh):
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key=CLIENT_KEY)
    result = client.images.generate(model="gpt-image-2", prompt="a lighthouse at dusk", n=2,
                                    response_format="b64_json", size="1536x1024", quality="high")
    assert len(result.data) == 2 and all(valid_png(d.b64_json) for d in result.data)
    assert result.size == "1536x1024" and result.quality == "high"
    assert len(fresh.requests) == 2
    for req in fresh.requests:
        body = req["body"]
        assert body["store"] is False and body["tool_choice"] == {"type": "image_generation"}
        assert body["tools"] == [{"type": "image_generation", "size": "1536x1024",
                                  "quality": "high"}]
        assert body["prompt_cache_key"] and req["headers"].get("session_id")


def test_edit_with_a_png_and_a_mask(stack, fresh):
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key=CLIENT_KEY)
    result = client.images.edit(model="gpt-image-2", prompt="add a red hat",
                                image=("photo.png", io.BytesIO(fake_png(5)), "image/png"),
                                mask=("mask.png", io.BytesIO(fake_png(6)), "image/png"))
    assert valid_png(result.data[0].b64_json)
    assert result.data[0].revised_prompt == "add a red hat [1 input images] [masked]"
    tool = fresh.requests[-1]["body"]["tools"][0]
    assert tool["input_image_mask"]["image_url"].startswith("data:image/png;base64,")


def test_streamed_generation_with_two_partial_images(stack, fresh):
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key=CLIENT_KEY)
    events = list(client.images.generate(model="gpt-image-2", prompt="a boat", stream=True,
                                         partial_images=2))
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + [
        "image_generation.completed"]
    assert all(valid_png(e.b64_json) for e in events)
    assert fresh.requests[-1]["body"]["tools"][0]["partial_images"] == 2


def test_bad_input_gets_the_sdks_error_classes(stack, fresh):
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key=CLIENT_KEY)
    for call in (lambda: client.images.generate(prompt="", model="gpt-image-2"),
                 lambda: client.images.generate(prompt="x", n=0),
                 lambda: client.images.edit(prompt="x", image=("a.txt", io.BytesIO(b"text"),
                                                               "text/plain"))):
        try:
            call()
        except openai.BadRequestError:
            continue
        raise AssertionError("expected a 400")
    assert fresh.requests == []
