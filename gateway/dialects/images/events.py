"""gateway.dialects.images.events
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Responses answers → the Images API's shapes: the JSON body of a call (one
image per upstream answer, in order) and, for ``stream: true``, OpenAI's image
streaming events (``image_generation.partial_image`` / ``.completed``, or
``image_edit.*`` for edits) built from the upstream's
``response.image_generation_call.partial_image`` events.
"""
from __future__ import annotations

import time

from ... import failures
from ...errors import GatewayError
from ...jsonio import dumps_text
from ..translator import Translator
from .request import ImagesRequest

IMAGE_ITEM = "image_generation_call"
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def image_of(response: dict) -> dict:
    """The generated image item of a final Responses object; GatewayError if none."""
    for item in response.get("output") or ():
        if isinstance(item, dict) and item.get("type") == IMAGE_ITEM:
            if item.get("status") == "failed" or not isinstance(item.get("result"), str):
                break
            return item
    text = _message_text(response)
    raise GatewayError(502, "The upstream made no image" + (f": {text[:300]}" if text else "."),
                       code="image_generation_failed")


def _message_text(response: dict) -> str:
    parts = []
    for item in response.get("output") or ():
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif isinstance(part, dict) and isinstance(part.get("refusal"), str):
                    parts.append(part["refusal"])
    return " ".join(parts).strip()


def usage_of(responses: list[dict]) -> dict:
    """The Images API's usage object, summed over the upstream answers."""
    total_in = total_out = 0
    for response in responses:
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        total_in += _int(usage.get("input_tokens"))
        total_out += _int(usage.get("output_tokens"))
    return {"input_tokens": total_in, "output_tokens": total_out,
            "total_tokens": total_in + total_out,
            "input_tokens_details": {"text_tokens": total_in, "image_tokens": 0}}


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _options(req: ImagesRequest, item: dict) -> dict:
    """size/quality/background/output_format: what the upstream reports, else what was asked."""
    out = {}
    for name in ("size", "quality", "background", "output_format"):
        value = item.get(name, req.options.get(name))
        if value is not None:
            out[name] = value
    return out


def _datum(req: ImagesRequest, item: dict) -> dict:
    b64 = item["result"]
    if req.data_url:
        fmt = item.get("output_format") or req.options.get("output_format") or "png"
        datum = {"url": f"data:{_MIME.get(fmt, 'image/png')};base64,{b64}"}
    else:
        datum = {"b64_json": b64}
    if isinstance(item.get("revised_prompt"), str):
        datum["revised_prompt"] = item["revised_prompt"]
    return datum


def images_body(req: ImagesRequest, responses: list[dict], created: int | None = None) -> dict:
    """The JSON answer of a call whose *responses* are its upstream answers, in order."""
    items = [image_of(r) for r in responses]
    body = {"created": created or int(time.time()),
            "data": [_datum(req, item) for item in items]}
    body.update(_options(req, items[0]))
    body["usage"] = usage_of(responses)
    return body


class ImagesStreamTranslator(Translator):
    """Upstream events → ``<prefix>.partial_image`` frames, then one ``<prefix>.completed``."""

    __slots__ = ("req", "done", "_item", "_created")

    def __init__(self, req: ImagesRequest):
        self.req = req
        self.done = False
        self._item: dict | None = None
        self._created = int(time.time())

    def _frame(self, kind: str, payload: dict) -> list[bytes]:
        event = f"{self.req.event_prefix}.{kind}"
        text = dumps_text({"type": event, **payload})
        return [f"event: {event}\ndata: {text}\n\n".encode()]

    def _on_partial(self, data: dict) -> list[bytes]:
        b64 = data["partial_image_b64"]
        if not isinstance(b64, str):
            return []
        payload = {"b64_json": b64, "created_at": self._created,
                   "partial_image_index": data.get("partial_image_index", 0)}
        payload.update(_options(self.req, {}))
        return self._frame("partial_image", payload)

    def _on_item_done(self, data: dict) -> list[bytes]:
        item = data["item"]
        if isinstance(item, dict) and item.get("type") == IMAGE_ITEM:
            self._item = item
        return []

    def _on_completed(self, data: dict) -> list[bytes]:
        response = data.get("response") if isinstance(data.get("response"), dict) else {}
        if self._item is not None and not response.get("output"):
            response = {**response, "output": [self._item]}
        try:
            item = image_of(response)
        except GatewayError as err:
            return self._fail(err)
        payload = {"b64_json": item["result"], "created_at": self._created}
        payload.update(_options(self.req, item))
        payload["usage"] = usage_of([response])
        self.done = True
        return self._frame("completed", payload)

    def _on_failed(self, data: dict) -> list[bytes]:
        return self._fail(failures.client_error(failures.from_event(data)))

    def _fail(self, err: GatewayError) -> list[bytes]:
        self.done = True
        text = dumps_text({"type": "error", "error": err.body()["error"]})
        return [f"event: error\ndata: {text}\n\n".encode()]

    def close(self) -> list[bytes]:
        if self.done:
            return []
        return self._fail(GatewayError(502, "The upstream ended before the image was made.",
                                       code="stream_truncated"))


ImagesStreamTranslator.HANDLERS = {
    "response.image_generation_call.partial_image": ImagesStreamTranslator._on_partial,
    "response.output_item.done": ImagesStreamTranslator._on_item_done,
    "response.completed": ImagesStreamTranslator._on_completed,
    "response.incomplete": ImagesStreamTranslator._on_completed,
    "response.failed": ImagesStreamTranslator._on_failed,
    "error": ImagesStreamTranslator._on_failed,
}
