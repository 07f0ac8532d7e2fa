"""gateway.dialects.responses.resource
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The response object as the client should see it, and the stored response's
input items as OpenAI pages them.

The Codex backend answers with a short response object (id, status, model,
output, usage …) and reports the request as *it* saw it (``store: false``,
no sampling parameters). Open Responses requires 31 fields on every response
object; :func:`fill` completes it from what the client sent (:func:`request_fields`,
taken before anything is dropped for the backend) and the specification's
defaults. Fields that describe the request are the client's; fields that
describe the answer are the upstream's.
"""
from __future__ import annotations

import time

from ...errors import GatewayError

# Request fields a response object reports, and their value when the client sent none.
REQUEST_DEFAULTS = {
    "instructions": None, "tools": [], "tool_choice": "auto", "parallel_tool_calls": True,
    "text": None, "temperature": 1.0, "top_p": 1.0, "presence_penalty": 0.0,
    "frequency_penalty": 0.0, "top_logprobs": 0, "truncation": "disabled",
    "max_output_tokens": None, "max_tool_calls": None, "store": True, "background": False,
    "metadata": {}, "safety_identifier": None, "prompt_cache_key": None,
    "previous_response_id": None, "reasoning": None,
}
ANSWER_DEFAULTS = {
    "object": "response", "status": "completed", "incomplete_details": None, "error": None,
    "usage": None, "service_tier": "default", "completed_at": None, "output": [],
}
_FLOATS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def request_fields(body: dict) -> dict:
    """What a response object reports of *body* (the client's request, as sent)."""
    out = {}
    for name, default in REQUEST_DEFAULTS.items():
        value = body.get(name)
        out[name] = default if value is None else value
    out["tools"] = [_tool(t) for t in out["tools"] if isinstance(t, dict)] \
        if isinstance(out["tools"], list) else []
    text = out["text"] if isinstance(out["text"], dict) else {}
    out["text"] = {"format": {"type": "text"}, **text}
    reasoning = out["reasoning"]
    if isinstance(reasoning, dict):
        out["reasoning"] = {"effort": None, "summary": None, **reasoning}
    for name in _FLOATS:
        if isinstance(out[name], int) and not isinstance(out[name], bool):
            out[name] = float(out[name])
    return out


def _tool(tool: dict) -> dict:
    if tool.get("type") == "function":
        return {"description": None, "parameters": None, "strict": True, **tool}
    return tool


def fill(response: dict, fields: dict, output: list | None = None) -> dict:
    """*response* completed in place to the Open Responses shape and returned;
    *output*: the items seen on the stream, when the final object left them out."""
    response.update(fields)
    for name, default in ANSWER_DEFAULTS.items():
        if response.get(name) is None:
            response[name] = list(default) if isinstance(default, list) else default
    if output and not response["output"]:
        response["output"] = output
    if response.get("model") is None:
        response["model"] = ""
    if not isinstance(response.get("created_at"), int):
        response["created_at"] = int(response.get("created_at") or time.time())
    if response["status"] == "completed" and response["completed_at"] is None:
        response["completed_at"] = int(time.time())
    return response


def deleted(rid: str) -> dict:
    """OpenAI's answer to ``DELETE /v1/responses/{id}``."""
    return {"id": rid, "object": "response", "deleted": True}


def not_found(rid: str) -> GatewayError:
    """OpenAI's 404 for a response id it does not hold (or another key made)."""
    short = rid if len(rid) <= 80 else rid[:80] + "…"
    return GatewayError(404, f"Response with id '{short}' not found.", code="not_found",
                        type="invalid_request_error")


def input_items(rid: str, items: list, args) -> dict:
    """``GET /v1/responses/{id}/input_items``: OpenAI's list, paged by ``after`` /
    ``before`` (item ids), ``limit`` (1-100, default 20) and ``order`` (``desc``,
    the default, or ``asc``). Items without an id get a stable one."""
    listed = [item if isinstance(item, dict) and item.get("id") else
              {**(item if isinstance(item, dict) else {}), "id": f"item_{rid}_{i}"}
              for i, item in enumerate(items)]
    order = args.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise GatewayError(400, "'order' must be 'asc' or 'desc'.", param="order",
                           code="invalid_value")
    try:
        limit = int(args.get("limit") or 20)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise GatewayError(400, "'limit' must be an integer from 1 to 100.", param="limit",
                           code="invalid_value")
    if order == "desc":
        listed.reverse()
    ids = [item["id"] for item in listed]
    start, end = 0, len(listed)
    for name in ("after", "before"):
        cursor = args.get(name)
        if cursor:
            if cursor not in ids:
                raise GatewayError(400, f"'{name}': no input item with id '{cursor[:80]}'.",
                                   param=name, code="invalid_value")
            if name == "after":
                start = ids.index(cursor) + 1
            else:
                end = ids.index(cursor)
    window = listed[start:end]
    page = window[:limit]
    return {"object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(window) > len(page)}
