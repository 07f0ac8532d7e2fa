"""gateway.api.stored_responses
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The Responses routes around a stored response, as OpenAI serves them (also
under ``/backend-api/codex/``):

* ``GET /v1/responses/{id}``: the stored response object;
* ``DELETE /v1/responses/{id}``;
* ``GET /v1/responses/{id}/input_items``: its input, paged like OpenAI's list;
* ``POST /v1/responses/input_tokens``: an estimate of a request's input tokens;
* ``POST /v1/responses/{id}/cancel``: a clear error (nothing runs in the background).

Only the client key that created a response sees it: another key's id is
answered exactly like an unknown one (404), so ids cannot be probed.
"""
from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from ..dialects.messages.count_tokens import estimate_input_tokens
from ..dialects.responses import resource
from ..dialects.responses.kept import Turn, store_unavailable
from ..dialects.responses.request import translate_request
from ..errors import GatewayError
from ..responses_store import StateUnavailable
from . import common

bp = Blueprint("stored_responses", __name__)
PREFIXES = ("/v1/responses", "/backend-api/codex/responses")


@bp.before_request
def _begin():
    common.begin("responses")
    common.authenticate()


def _stored(rid: str):
    keeper = common.state().responses_store
    if keeper is None:
        raise resource.not_found(rid)
    try:
        stored = keeper.get(rid, g.principal or "")
    except StateUnavailable:
        raise store_unavailable("stored responses") from None
    if stored is None:
        raise resource.not_found(rid)
    return stored


def retrieve(rid: str):
    if request.args.get("stream") in ("true", "1"):
        raise GatewayError(400, "Streaming a stored response again is not supported by this "
                           "gateway; retrieve it without stream.", param="stream",
                           code="unsupported_parameter")
    return common.json_response(_stored(rid).response)


def delete(rid: str):
    keeper = common.state().responses_store
    try:
        found = keeper is not None and keeper.delete(rid, g.principal or "")
    except StateUnavailable:
        raise store_unavailable("stored responses") from None
    if not found:
        raise resource.not_found(rid)
    return common.json_response(resource.deleted(rid))


def input_items(rid: str):
    stored = _stored(rid)
    own = stored.input[len(stored.input) - stored.own_input:]
    return common.json_response(resource.input_items(rid, own, request.args))


def input_tokens():
    req = translate_request(common.json_body())
    Turn.resolve(req.responses, common.state().responses_store, g.principal or "")
    return common.json_response({"object": "response.input_tokens",
                                 "input_tokens": estimate_input_tokens(req.responses)})


def cancel(rid: str):
    _stored(rid)
    raise GatewayError(400, "Only responses created with background=true can be cancelled, and "
                       "this gateway runs none in the background: the response is already "
                       "finished.", code="invalid_request")


for _prefix in PREFIXES:
    bp.add_url_rule(f"{_prefix}/input_tokens", "input_tokens", input_tokens, methods=["POST"])
    bp.add_url_rule(f"{_prefix}/<rid>", "retrieve", retrieve, methods=["GET"])
    bp.add_url_rule(f"{_prefix}/<rid>", "delete", delete, methods=["DELETE"])
    bp.add_url_rule(f"{_prefix}/<rid>/input_items", "input_items", input_items, methods=["GET"])
    bp.add_url_rule(f"{_prefix}/<rid>/cancel", "cancel", cancel, methods=["POST"])
