"""gateway.api.responses
~~~~~~~~~~~~~~~~~~~~~~~~~
``POST /v1/responses``: the client already speaks the upstream's dialect, so
events pass through as the exact bytes the upstream sent.
"""
from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from ..errors import bad_request
from ..executor import Call
from ..sse import KEEPALIVE
from . import common

bp = Blueprint("responses", __name__)
bp.before_request(common.authenticate)


@bp.post("/v1/responses")
@bp.post("/backend-api/codex/responses")
def create():
    """Create a response (streaming or not) through the shared executor."""
    body = normalise(common.json_body())
    stream_wanted = body.pop("stream", False) is True
    st = common.state()
    call = Call(body=body, headers=request.headers, principal=g.principal, endpoint="responses")
    upstream = st.executor.open(call)
    headers = upstream.client_headers()
    if not stream_wanted:
        return common.json_response(st.executor.collect(upstream), headers=headers)
    return common.sse_response(passthrough(upstream, st.keepalive), headers)


def passthrough(upstream, keepalive: float):
    try:
        for event in upstream.events(keepalive):
            yield KEEPALIVE if event is None else event.raw
    finally:
        upstream.close()


def normalise(body: dict) -> dict:
    """Validate the client's request and give it the one shape the executor expects."""
    common.require_model(body)
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
    common.check_type(body, "instructions", str, "a string")
    common.check_type(body, "stream", bool, "a boolean")
    common.check_type(body, "store", bool, "a boolean")
    common.check_type(body, "tools", list, "an array")
    common.check_type(body, "include", list, "an array of strings")
    common.check_type(body, "reasoning", dict, "an object")
    common.check_type(body, "text", dict, "an object")
    common.check_type(body, "metadata", dict, "an object")
    common.check_type(body, "prompt_cache_key", str, "a string")
    common.check_type(body, "parallel_tool_calls", bool, "a boolean")
    common.check_type(body, "tool_choice", (str, dict), "a string or an object")
    common.check_retention(body)
    return body
