"""gateway.api.responses
~~~~~~~~~~~~~~~~~~~~~~~~~
``POST /v1/responses`` (also ``/backend-api/codex/responses``) over HTTP: the
client already speaks the upstream's dialect, so events pass through as the
exact bytes the upstream sent. A request that chains on stored responses, or
is to be kept, goes through :class:`~gateway.dialects.responses.kept.Turn`.
"""
from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from ..dialects.responses import events
from ..dialects.responses.kept import Turn
from ..dialects.responses.request import translate_request
from ..executor import Call
from . import common

bp = Blueprint("responses", __name__)


@bp.before_request
def _begin():
    common.begin("responses")
    common.authenticate()


@bp.post("/v1/responses")
@bp.post("/backend-api/codex/responses")
def create():
    """Create a response (streaming or not) through the shared executor."""
    req = translate_request(common.json_body())
    st = common.state()
    turn = Turn(req.responses, st.responses_store, g.principal, request.headers)
    call = Call(body=req.responses, headers=request.headers, principal=g.principal,
                endpoint="responses", record=g.record,
                stream=req.stream, keepalive=st.keepalive if req.stream else 0.0)
    upstream = st.executor.open(call)
    headers = upstream.client_headers()
    if not req.stream:
        return common.json_response(turn.final(upstream.final()), headers=headers)
    frames = turn.frames(upstream) if turn.watching else events.frames(upstream)
    return common.sse_response(frames, headers, upstream)
