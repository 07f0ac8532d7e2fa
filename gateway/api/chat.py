"""gateway.api.chat
~~~~~~~~~~~~~~~~~~~~
``POST /v1/chat/completions``: translate to a Responses request, run it
through the same executor as ``/v1/responses``, translate the events back.
"""
from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from ..dialects.chat.events import ChatStreamTranslator
from ..dialects.chat.events import completion_from_response
from ..dialects.chat.request import translate_request
from ..dialects.translator import frames
from ..executor import Call
from . import common

bp = Blueprint("chat", __name__)


@bp.before_request
def _begin():
    common.begin("chat")
    common.authenticate()


@bp.post("/v1/chat/completions")
def create():
    """Create a chat completion (streaming or not)."""
    body = common.json_body()
    req = translate_request(body)
    st = common.state()
    model = req.responses["model"]  # answers name the model the client asked for
    call = Call(body=req.responses, headers=request.headers, principal=g.principal,
                endpoint="chat", param_aliases=req.param_aliases, dropped=list(req.dropped),
                record=g.record, stream=req.stream, keepalive=st.keepalive if req.stream else 0.0)
    upstream = st.executor.open(call)
    headers = upstream.client_headers()
    if not req.stream:
        final = upstream.final()
        completion = completion_from_response(final, model, tool_names=req.tool_names,
                                              stop=req.stop)
        return common.json_response(completion, headers=headers)
    translator = ChatStreamTranslator(model, include_usage=req.include_usage,
                                      tool_names=req.tool_names, stop=req.stop)
    return common.sse_response(frames(upstream, translator), headers, upstream)
