"""gateway.dialects.images: the pure rules (request building, answer shapes)."""
from __future__ import annotations

import pytest

from gateway.dialects.images import request as rq
from gateway.dialects.images.events import ImagesStreamTranslator, images_body
from gateway.errors import GatewayError
from gateway.sse import make_event


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


def _final(result, **extra):
    return {"output": [{"type": "image_generation_call", "status": "completed", "result": result,
                        **extra}], "usage": {"input_tokens": 10, "output_tokens": 5}}


def test_images_body_keeps_order_and_sums_usage():
    req = rq.generation_request({"prompt": "p", "n": 2, "size": "1024x1024"}, model="m")
    body = images_body(req, [_final("AAA"), _final("BBB")], created=1)
    assert [d["b64_json"] for d in body["data"]] == ["AAA", "BBB"]
    assert body["size"] == "1024x1024" and body["usage"]["total_tokens"] == 30


def test_an_answer_without_an_image_is_a_502_with_the_models_words():
    req = rq.generation_request({"prompt": "p"}, model="m")
    final = {"output": [{"type": "message", "content": [{"type": "output_text",
                                                         "text": "I cannot draw that."}]}]}
    with pytest.raises(GatewayError) as err:
        images_body(req, [final])
    assert err.value.status == 502 and "I cannot draw that." in err.value.message


def test_stream_translator_ends_with_an_error_event_when_the_answer_is_cut():
    req = rq.generation_request({"prompt": "p", "stream": True}, model="m")
    tr = ImagesStreamTranslator(req)
    frames = tr.feed(make_event({"type": "response.image_generation_call.partial_image",
                                 "partial_image_b64": "QQ==", "partial_image_index": 0}))
    assert frames and b"image_generation.partial_image" in frames[0]
    tail = tr.close()
    assert b"event: error" in tail[0] and b"stream_truncated" in tail[0]
