"""gateway.api.chat
~~~~~~~~~~~~~~~~~~~~
``POST /v1/chat/completions``: translate to a Responses request, run it
through the same executor as ``/v1/responses``, translate the events back.
"""
from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from ..executor import Call
from ..sse import KEEPALIVE
from ..translate.chat_request import translate_request
from ..translate.chat_stream import ChatStreamTranslator
from ..translate.chat_stream import completion_from_response
from . import common

bp = Blueprint("chat", __name__)
bp.before_request(common.authenticate)


@bp.post("/v1/chat/completions")
def create():
    """Create a chat completion (streaming or not)."""
    body = common.json_body()
    model = common.require_model(body)
    common.check_retention(body)
    req = translate_request(body)
    st = common.state()
    call = Call(body=req.responses, headers=request.headers, principal=g.principal,
                endpoint="chat", param_aliases=req.param_aliases, dropped=list(req.dropped))
    upstream = st.executor.open(call)
    headers = upstream.client_headers()
    if not req.stream:
        final = st.executor.collect(upstream)
        completion = completion_from_response(final, model, tool_names=req.tool_names,
                                              stop=req.stop)
        return common.json_response(completion, headers=headers)
    translator = ChatStreamTranslator(model, include_usage=req.include_usage,
                                      tool_names=req.tool_names, stop=req.stop)
    return common.sse_response(frames(upstream, translator, st.keepalive), headers)


def frames(upstream, translator: ChatStreamTranslator, keepalive: float):
    """Chat SSE frames; stops reading upstream as soon as the answer is final."""
    outcome = None
    try:
        for event in upstream.events(keepalive):
            if event is None:
                yield KEEPALIVE
                continue
            out = translator.feed(event)
            if out:
                yield b"".join(out)
            if translator.done:
                outcome = "stop_sequence" if upstream.outcome == "open" else None
                break
        tail = translator.close()
        if tail:
            yield b"".join(tail)
    finally:
        upstream.close(outcome)
