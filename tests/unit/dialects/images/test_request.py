"""gateway.dialects.images.request: sniffing, model names, tool options, multipart fields."""
from __future__ import annotations

import pytest

from gateway.dialects.images import request as rq
from gateway.errors import GatewayError


@pytest.mark.parametrize("data, mime", [
    (b"\x89PNG\r\n\x1a\n....", "image/png"), (b"\xff\xd8\xff\xe0..", "image/jpeg"),
    (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"), (b"GIF89a", None), (b"hello", None), (b"", None),
])
def test_sniff(data, mime):
    assert rq.sniff(data) == mime


@pytest.mark.parametrize("asked, sent", [
    (None, "main"), ("", "main"), ("gpt-image-2", "main"), ("GPT-IMAGE-1.5", "main"),
    ("dall-e-3", "main"), ("gpt-5.4", "gpt-5.4"),
])
def test_image_model_names_map_to_the_configured_model(asked, sent):
    assert rq.upstream_model(asked, "main") == sent


@pytest.mark.parametrize("field, value, tool", [
    ("quality", "hd", {"quality": "high"}), ("quality", "standard", {"quality": "medium"}),
    ("background", "transparent", {"background": "transparent"}),
    ("output_format", "webp", {"output_format": "webp"}),
    ("output_compression", 50, {"output_compression": 50}),
    ("moderation", "low", {"moderation": "low"}), ("size", "auto", {"size": "auto"}),
])
def test_each_option_becomes_a_tool_option(field, value, tool):
    req = rq.generation_request({"prompt": "p", field: value}, model="m")
    assert req.responses["tools"] == [{"type": "image_generation", **tool}]


def test_partial_images_only_when_streaming_and_unknown_fields_reported():
    plain = rq.generation_request({"prompt": "p", "partial_images": 2, "user": "u"}, model="m")
    assert plain.responses["tools"] == [{"type": "image_generation"}]
    assert plain.dropped == ["user"]
    streamed = rq.generation_request({"prompt": "p", "stream": True, "partial_images": 2},
                                     model="m")
    assert streamed.responses["tools"][0]["partial_images"] == 2


def test_multipart_numbers_are_typed_and_bad_ones_refused():
    png = rq.Upload(b"\x89PNG\r\n\x1a\nxx", "a.png")
    req = rq.edit_request({"prompt": "p", "n": "2", "stream": "false"}, [png], None, model="m",
                          max_image_bytes=100)
    assert req.n == 2 and req.stream is False
    with pytest.raises(GatewayError) as err:
        rq.edit_request({"prompt": "p", "n": "two"}, [png], None, model="m", max_image_bytes=100)
    assert err.value.status == 400 and err.value.param == "n"
