"""/v1/images/generations and /v1/images/edits through the app and the fake upstream."""
from __future__ import annotations

import base64
import json

import pytest

from tests.fakes.codex_answers import fake_png
from tests.support import CLIENT_KEY

GEN = "/v1/images/generations"
EDIT = "/v1/images/edits"


def png_ok(b64: str) -> bool:
    data = base64.b64decode(b64)
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


def edit(gw, files: dict, **fields):
    data = {k: str(v) for k, v in fields.items()}
    for name, value in files.items():
        data[name] = value
    return gw.client.post(EDIT, data=data, headers={"Authorization": f"Bearer {CLIENT_KEY}"},
                          content_type="multipart/form-data")


def test_generation_sends_the_image_tool_with_the_clients_options(make_client, upstream):
    gw = make_client()
    resp = gw.post(GEN, {"model": "gpt-image-2", "prompt": "a red fox", "size": "1024x1536",
                         "quality": "high", "background": "transparent",
                         "output_format": "png", "moderation": "low"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert len(body["data"]) == 1 and png_ok(body["data"][0]["b64_json"])
    assert body["size"] == "1024x1536" and body["quality"] == "high"
    assert body["usage"]["output_tokens"] > 0
    sent = upstream.requests[-1]["body"]
    assert sent["store"] is False and sent["stream"] is True and sent["model"] == "gpt-5.5"
    assert sent["tools"] == [{"type": "image_generation", "size": "1024x1536", "quality": "high",
                              "background": "transparent", "output_format": "png",
                              "moderation": "low"}]
    assert sent["tool_choice"] == {"type": "image_generation"}
    assert sent["input"][0]["content"][0] == {"type": "input_text", "text": "a red fox"}
    assert "prompt_cache_key" in sent  # the usual continuity envelope
    assert resp.headers["x-gateway-continuity"]


def test_n_images_are_n_upstream_requests_answered_in_order(make_client, upstream):
    gw = make_client()
    resp = gw.post(GEN, {"prompt": "a lighthouse", "n": 3})
    assert resp.status_code == 200
    data = resp.get_json()["data"]
    assert len(data) == 3 and all(png_ok(d["b64_json"]) for d in data)
    assert len(upstream.requests) == 3
    assert len({d["b64_json"] for d in data}) == 3  # three images, not one thrice


def test_one_failing_image_fails_the_whole_call(make_client, upstream):
    gw = make_client()
    upstream.inject("http_500", count=4)
    resp = gw.post(GEN, {"prompt": "a lighthouse", "n": 2})
    assert resp.status_code >= 500 and "data" not in resp.get_json()


def test_a_moderation_refusal_is_a_400(make_client):
    resp = make_client().post(GEN, {"prompt": "[[moderation]] something"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "moderation_blocked"


def test_edit_with_two_images_and_a_mask(make_client, upstream):
    gw = make_client()
    import io
    resp = edit(gw, {"image[]": [(io.BytesIO(fake_png(1)), "a.png"), (io.BytesIO(fake_png(2)), "b.png")],
                     "mask": (io.BytesIO(fake_png(3)), "mask.png")},
                prompt="add a hat", input_fidelity="high", size="1024x1024")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert png_ok(body["data"][0]["b64_json"])
    assert body["data"][0]["revised_prompt"] == "add a hat [2 input images] [masked]"
    sent = upstream.requests[-1]["body"]
    parts = sent["input"][0]["content"]
    assert [p["type"] for p in parts] == ["input_text", "input_image", "input_image"]
    assert parts[1]["image_url"].startswith("data:image/png;base64,")
    tool = sent["tools"][0]
    assert tool["input_fidelity"] == "high"
    assert tool["input_image_mask"]["image_url"].startswith("data:image/png;base64,")


def test_streamed_generation_sends_partial_images_then_completed(make_client):
    gw = make_client()
    resp = gw.post(GEN, {"prompt": "a boat", "stream": True, "partial_images": 2})
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    events = [json.loads(line[6:]) for line in resp.get_data(as_text=True).splitlines()
              if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["image_generation.partial_image"] * 2 + [
        "image_generation.completed"]
    assert [e["partial_image_index"] for e in events[:2]] == [0, 1]
    assert all(png_ok(e["b64_json"]) for e in events)
    assert events[-1]["usage"]["total_tokens"] > 0


def test_streamed_edit_uses_the_edit_event_names(make_client):
    import io
    resp = edit(make_client(), {"image": (io.BytesIO(fake_png(1)), "a.png")},
                prompt="x", stream="true", partial_images=1)
    types = [json.loads(line[6:])["type"] for line in resp.get_data(as_text=True).splitlines()
             if line.startswith("data: ")]
    assert types == ["image_edit.partial_image", "image_edit.completed"]


@pytest.mark.parametrize("body, status, param", [
    ({}, 400, "prompt"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": "x", "n": 0}, 400, "n"),
    ({"prompt": "x", "n": 11}, 400, "n"),
    ({"prompt": "x", "n": "2"}, 400, "n"),
    ({"prompt": "x", "size": "big"}, 400, "size"),
    ({"prompt": "x", "quality": "ultra"}, 400, "quality"),
    ({"prompt": "x", "response_format": "url"}, 400, "response_format"),
    ({"prompt": "x", "stream": True, "n": 2}, 400, "n"),
    ({"prompt": "x", "output_compression": 101}, 400, "output_compression"),
])
def test_bad_generation_input_is_a_clear_400(make_client, upstream, body, status, param):
    resp = make_client().post(GEN, body)
    assert resp.status_code == status
    assert resp.get_json()["error"]["param"] == param
    assert upstream.requests == []


def test_url_format_as_data_url_when_configured(make_client):
    gw = make_client(images_url_format="data_url")
    resp = gw.post(GEN, {"prompt": "x", "response_format": "url"})
    url = resp.get_json()["data"][0]["url"]
    assert url.startswith("data:image/png;base64,") and png_ok(url.split(",", 1)[1])


def test_bad_edit_input(make_client, upstream):
    import io
    gw = make_client(images_max_image_bytes=1000)
    text = edit(gw, {"image": (io.BytesIO(b"hello, not an image"), "notes.txt")}, prompt="x")
    assert text.status_code == 400 and text.get_json()["error"]["code"] == "invalid_image"
    big = edit(gw, {"image": (io.BytesIO(fake_png(1) + b"\0" * 2000), "big.png")}, prompt="x")
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "image_too_large"
    none = edit(gw, {}, prompt="x")
    assert none.status_code == 400 and none.get_json()["error"]["param"] == "image"
    json_body = gw.post(EDIT, {"prompt": "x"})
    assert json_body.status_code == 400
    assert upstream.requests == []


def test_images_need_a_client_key(make_client):
    resp = make_client().post(GEN, {"prompt": "x"}, key="wrong")
    assert resp.status_code == 401 and "error" in resp.get_json()


def test_responses_with_the_image_tool_streams_partial_images_through(make_client, upstream):
    """Codex CLI's own image tool over HTTP: events pass through as the upstream sent them."""
    tool = {"type": "image_generation", "output_format": "png", "partial_images": 1}
    resp = make_client().post("/v1/responses", {"model": "gpt-5.5", "stream": True,
                                                "input": "[[image]] a cat", "tools": [tool]})
    kinds = [json.loads(line[6:])["type"] for line in resp.get_data(as_text=True).splitlines()
             if line.startswith("data: ")]
    assert "response.image_generation_call.partial_image" in kinds
    assert kinds[-1] == "response.completed"
    assert upstream.requests[-1]["body"]["tools"] == [tool]
