"""gateway.dialects.responses.request
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A client's ``/v1/responses`` body -> the normalised Responses request.

The client already speaks the upstream's dialect, so this only validates types
and gives ``input`` its one shape (a string becomes one user message). Items
pass through untouched, whatever their type (``compaction_trigger``,
``compaction``, ``additional_tools``, item ``id``s): the backend knows them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import bad_request
from ..validate import check_retention, check_type, require_model

_TYPES = (
    ("instructions", str, "a string"),
    ("stream", bool, "a boolean"),
    ("store", bool, "a boolean"),
    ("tools", list, "an array"),
    ("include", list, "an array of strings"),
    ("reasoning", dict, "an object"),
    ("text", dict, "an object"),
    ("metadata", dict, "an object"),
    ("prompt_cache_key", str, "a string"),
    ("parallel_tool_calls", bool, "a boolean"),
    ("tool_choice", (str, dict), "a string or an object"),
    ("previous_response_id", str, "a string"),
)


@dataclass(slots=True)
class ResponsesRequest:
    responses: dict        # without ``stream``: the executor always streams
    stream: bool = False
    model: str = ""


def translate_request(body: dict) -> ResponsesRequest:
    """Validate the client's request; raise a 400 ``GatewayError`` on bad input."""
    model = require_model(body)
    items = body.get("input")
    if items is None:
        raise bad_request("Missing required parameter: 'input'.", param="input")
    if isinstance(items, str):
        body["input"] = [{"type": "message", "role": "user",
                          "content": [{"type": "input_text", "text": items}]}]
    elif not isinstance(items, list):
        raise bad_request("'input' must be a string or an array of input items.", param="input")
    elif not all(isinstance(i, dict) for i in items):
        raise bad_request("Every item of 'input' must be an object.", param="input")
    for name, types, label in _TYPES:
        check_type(body, name, types, label)
    check_retention(body)
    stream = body.pop("stream", False) is True
    return ResponsesRequest(body, stream, model)
