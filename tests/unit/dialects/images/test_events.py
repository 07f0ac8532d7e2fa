"""gateway.dialects.images.events: the answer's shapes (non-stream body, stream translator)."""
from __future__ import annotations

import pytest

from gateway.dialects.images import request as rq
from gateway.dialects.images.events import ImagesStreamTranslator, images_body
from gateway.errors import GatewayError
from gateway.sse import make_event


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
