"""gateway.api.messages
~~~~~~~~~~~~~~~~~~~~~~~~
``POST /v1/messages`` (Anthropic Messages: Claude Code, the Anthropic SDKs) and
``POST /v1/messages/count_tokens``, on the same accounts and executor as the
OpenAI dialects. Any query string is accepted (Claude Code adds ``?beta=true``).
"""
from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from ..dialects.messages.count_tokens import count_tokens
from ..dialects.messages.events import MessagesStreamTranslator
from ..dialects.messages.events import message_from_response
from ..dialects.messages.count_tokens import estimate_input_tokens
from ..dialects.messages.session import client_authorization
from ..dialects.messages.request import translate_request
from ..dialects.translator import frames
from ..executor import Call
from . import common

bp = Blueprint("messages", __name__)


@bp.before_request
def _begin():
    common.begin("messages")
    common.authenticate(client_authorization(request.headers))


@bp.post("/v1/messages")
def create():
    """Create a message (streaming or not)."""
    req = translate_request(common.json_body(), request.headers)
    st = common.state()
    call = Call(body=req.responses, headers=request.headers, principal=g.principal,
                endpoint="messages", param_aliases=req.param_aliases, dropped=list(req.dropped),
                session=req.session, record=g.record, stream=req.stream,
                keepalive=st.keepalive if req.stream else 0.0)
    upstream = st.executor.open(call)
    headers = upstream.client_headers()
    if not req.stream:
        final = upstream.final()
        message = message_from_response(final, req.model, thinking=req.thinking,
                                        tool_names=req.tool_names, stop=req.stop)
        return common.json_response(message, headers=headers)
    translator = MessagesStreamTranslator(req.model, thinking=req.thinking,
                                          tool_names=req.tool_names, stop=req.stop,
                                          input_tokens=estimate_input_tokens(req.responses))
    return common.sse_response(frames(upstream, translator), headers, upstream)


@bp.post("/v1/messages/count_tokens")
def tokens():
    """An estimate (no tokenizer download at run time; see count_tokens.py)."""
    g.record = None  # not a model request: no usage row
    return common.json_response(count_tokens(common.json_body(), request.headers))
