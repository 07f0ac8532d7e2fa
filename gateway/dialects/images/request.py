"""gateway.dialects.images.request
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
An Images API call → the Responses request the upstream serves it with.

The prompt (and, for edits, the input images) become one user message; the
image options the client gave become the ``image_generation`` tool's options,
and ``tool_choice`` asks for that tool. ``n`` images are ``n`` such requests
(the Responses tool makes one image per call). ``response_format=url`` has no
file hosting behind it: a 400, unless ``images.url_format = "data_url"``.
"""
from __future__ import annotations

import base64
import fnmatch
from dataclasses import dataclass, field

from ...errors import GatewayError, bad_request

MAX_N = 10
MAX_PROMPT_CHARS = 32000
MAX_PARTIAL_IMAGES = 3
INSTRUCTIONS = ("Make the image the user describes with the image_generation tool, "
                "following their words closely.")
# Client model names that mean "the image model": served by the gateway's images.model.
IMAGE_MODEL_NAMES = ("gpt-image-*", "dall-e-*", "chatgpt-image-*")

# Option -> accepted values (None: any value of the right type, checked below).
_CHOICES = {
    "quality": ("auto", "low", "medium", "high"),
    "background": ("auto", "transparent", "opaque"),
    "output_format": ("png", "jpeg", "webp"),
    "moderation": ("auto", "low"),
    "input_fidelity": ("high", "low"),
}
_LEGACY_QUALITY = {"standard": "medium", "hd": "high"}  # DALL·E's names
_FORMATS = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
DEFAULT_MODEL = "gpt-5.5"  # main_model in gateway/models/builtin.toml
IGNORED = ("user", "style")  # accepted, not forwarded (reported as dropped)


@dataclass
class ImagesRequest:
    """One Images API call, normalised."""

    kind: str                      # "generation" or "edit"
    responses: dict                # the Responses request for one image
    n: int = 1
    stream: bool = False
    partial_images: int = 0
    data_url: bool = False         # answer ``url`` as a data URL instead of b64_json
    options: dict = field(default_factory=dict)   # echoed in the answer (size, quality …)
    dropped: list = field(default_factory=list)

    @property
    def event_prefix(self) -> str:
        return "image_generation" if self.kind == "generation" else "image_edit"


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart edit: its bytes and what the client called it."""

    data: bytes
    filename: str = ""


def sniff(data: bytes) -> str | None:
    """The image's MIME type from its first bytes (PNG, JPEG, WebP), else None."""
    for magic, mime in _FORMATS.items():
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def upstream_model(asked, default: str) -> str:
    """The Responses model for *asked*: an image model's name (or none) → *default*."""
    if asked is None or asked == "":
        return default
    if not isinstance(asked, str):
        raise bad_request("model must be a string.", param="model")
    if any(fnmatch.fnmatch(asked.lower(), p) for p in IMAGE_MODEL_NAMES):
        return default
    return asked


def generation_request(body: dict, *, model: str, url_format: str = "error") -> ImagesRequest:
    """``POST /v1/images/generations`` (a JSON body)."""
    return _build("generation", body, [], None, model=model, url_format=url_format)


def edit_request(fields: dict, images: list[Upload], mask: Upload | None, *, model: str,
                 url_format: str = "error", max_image_bytes: int) -> ImagesRequest:
    """``POST /v1/images/edits``: multipart *fields* (strings) and files."""
    if not images:
        raise bad_request("image is required: send one or more image files (image or image[]).",
                          param="image")
    urls = [_image_url(up, "image", max_image_bytes) for up in images]
    mask_url = _image_url(mask, "mask", max_image_bytes) if mask is not None else None
    return _build("edit", _typed_fields(fields), urls, mask_url, model=model,
                  url_format=url_format)


def _image_url(up: Upload, param: str, limit: int) -> str:
    if len(up.data) > limit:
        raise GatewayError(413, f"{param} '{up.filename or 'file'}' is {len(up.data)} bytes; "
                           f"the limit is {limit} bytes.", code="image_too_large", param=param)
    mime = sniff(up.data)
    if mime is None:
        raise bad_request(f"{param} '{up.filename or 'file'}' is not a PNG, JPEG or WebP image.",
                          param=param, code="invalid_image")
    return data_url(up.data, mime)


def _typed_fields(fields: dict) -> dict:
    """Multipart values are text: numbers and booleans back to their types."""
    out = dict(fields)
    for name in ("n", "output_compression", "partial_images"):
        value = out.get(name)
        if isinstance(value, str):
            try:
                out[name] = int(value)
            except ValueError:
                raise bad_request(f"{name} must be an integer.", param=name) from None
    if isinstance(out.get("stream"), str):
        out["stream"] = out["stream"].strip().lower() in ("true", "1")
    return out


def _build(kind: str, body: dict, images: list[str], mask: str | None, *, model: str,
           url_format: str) -> ImagesRequest:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("prompt is required: a non-empty string.", param="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise bad_request(f"prompt is longer than {MAX_PROMPT_CHARS} characters.", param="prompt")
    n = _int(body, "n", 1, 1, MAX_N)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream must be a boolean.", param="stream")
    partial = _int(body, "partial_images", 0, 0, MAX_PARTIAL_IMAGES)
    if stream and n != 1:
        raise bad_request("stream supports n=1 only.", param="n")
    fmt = body.get("response_format") or "b64_json"
    if fmt not in ("b64_json", "url"):
        raise bad_request("response_format must be 'b64_json' or 'url'.", param="response_format")
    if fmt == "url" and url_format != "data_url":
        raise bad_request("response_format 'url' is not served: this gateway hosts no files. "
                          "Ask for 'b64_json' (the default).", param="response_format",
                          code="unsupported_response_format")
    tool: dict = {"type": "image_generation"}
    options: dict = {}
    size = body.get("size")
    if size is not None:
        if not isinstance(size, str) or not _is_size(size):
            raise bad_request("size must be 'auto' or WIDTHxHEIGHT, e.g. '1024x1024'.",
                              param="size")
        tool["size"] = options["size"] = size
    for name, allowed in _CHOICES.items():
        value = body.get(name)
        if value is None:
            continue
        if name == "quality" and value in _LEGACY_QUALITY:
            value = _LEGACY_QUALITY[value]
        if name == "input_fidelity" and kind != "edit":
            raise bad_request("input_fidelity applies to edits only.", param=name)
        if value not in allowed:
            raise bad_request(f"{name} must be one of {', '.join(allowed)}.", param=name)
        tool[name] = value
        if name != "moderation":
            options[name] = value
    if body.get("output_compression") is not None:
        tool["output_compression"] = _int(body, "output_compression", 100, 0, 100)
    if stream and partial:
        tool["partial_images"] = partial
    if mask is not None:
        tool["input_image_mask"] = {"image_url": mask}
    content = [{"type": "input_text", "text": prompt}]
    content += [{"type": "input_image", "image_url": url} for url in images]
    responses = {
        "model": model, "instructions": INSTRUCTIONS,
        "input": [{"type": "message", "role": "user", "content": content}],
        "tools": [tool], "tool_choice": {"type": "image_generation"},
        "stream": True, "store": False,
    }
    dropped = [name for name in IGNORED if body.get(name) is not None]
    return ImagesRequest(kind, responses, n=n, stream=stream, partial_images=partial,
                         data_url=fmt == "url", options=options, dropped=dropped)


def _is_size(value: str) -> bool:
    if value == "auto":
        return True
    w, sep, h = value.partition("x")
    return bool(sep) and w.isdigit() and h.isdigit() and 0 < int(w) <= 8192 and 0 < int(h) <= 8192


def _int(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"{name} must be an integer from {low} to {high}.", param=name)
    return value
