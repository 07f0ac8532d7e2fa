"""gateway.api.gemini
~~~~~~~~~~~~~~~~~~~~~~
Google's Gemini API (Gemini CLI, the google-genai SDKs) on the same accounts
and executor: ``POST /v1beta/models/{model}:generateContent``,
``:streamGenerateContent`` (``?alt=sse``, else one JSON array written as it
comes), ``:countTokens`` (an estimate), ``GET /v1beta/models`` and
``/v1beta/models/{model}``; the same under ``/v1`` (google-genai's default).
``GET /v1/models`` is shared with the OpenAI list: a request that carries
``x-goog-api-key`` or ``?key=`` gets Google's shape (:func:`wants_list`).

The client key comes in ``x-goog-api-key``, ``?key=`` or ``Authorization``.
"""
from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from .. import models
from ..dialects.gemini.count_tokens import count_tokens
from ..dialects.gemini.events import GeminiStreamTranslator
from ..dialects.gemini.events import response_from_final
from ..dialects.gemini.listing import model_entry
from ..dialects.gemini.listing import model_list
from ..dialects.gemini.request import client_authorization
from ..dialects.gemini.request import translate_request
from ..dialects.translator import frames
from ..dialects.validate import check_model_name
from ..errors import GatewayError
from ..executor import Call
from . import common

bp = Blueprint("gemini", __name__)
GENERATE = ("generateContent", "streamGenerateContent")


def _enter() -> None:
    common.begin("gemini")
    common.authenticate(client_authorization(request.headers, request.args.get("key")))


bp.before_request(_enter)


def wants_list(req) -> bool:
    """``GET /v1/models`` from a Google client (it sends its key Google's way)."""
    return "x-goog-api-key" in req.headers or "key" in req.args


def list_models():
    """The catalog in Google's shape (also ``GET /v1/models`` from a Google client)."""
    if g.get("dialect") != "gemini":
        _enter()
    g.record = None  # not a model request: no usage row
    st = common.state()
    kinds = {a.kind for a in st.pool.accounts()} or None
    listed = models.openai_list(st.executor.catalog, kinds=kinds, served=st.pool.served_models())
    return common.json_response(model_list(listed))


bp.get("/v1beta/models")(list_models)


@bp.get("/v1beta/models/<path:name>")
@bp.get("/v1/models/<path:name>")
def get_model(name: str):
    """One model, found the way a request would find it (aliases included)."""
    g.record = None
    st = common.state()
    res = models.resolve(name.removeprefix("models/"), st.executor.catalog,
                         served=st.pool.served_models())
    kinds = {a.kind for a in st.pool.accounts()} or None
    context = res.entry.context_window(kinds) if res.entry is not None else None
    return common.json_response(model_entry(res.asked, res.model, context))


@bp.post("/v1beta/models/<path:target>")
@bp.post("/v1/models/<path:target>")
def call_model(target: str):
    """``{model}:generateContent`` / ``:streamGenerateContent`` / ``:countTokens``."""
    name, _, method = target.rpartition(":")
    name = name.removeprefix("models/")
    if not name or (method not in GENERATE and method != "countTokens"):
        raise GatewayError(404, f"Method ':{method[:40]}' is not served here; this gateway "
                                "serves :generateContent, :streamGenerateContent and "
                                ":countTokens.", code="not_found")
    check_model_name(name)  # from the URL: the same bound as a body's model
    g.record.model_asked = name
    body = common.json_body()
    if method == "countTokens":
        g.record = None
        return common.json_response(count_tokens(body, name))
    req = translate_request(body, name)
    stream = method == "streamGenerateContent"
    st = common.state()
    call = Call(body=req.responses, headers=request.headers, principal=g.principal,
                endpoint="gemini", param_aliases=req.param_aliases, dropped=list(req.dropped),
                record=g.record, stream=stream, keepalive=st.keepalive if stream else 0.0)
    upstream = st.executor.open(call)
    headers = upstream.client_headers()
    if not stream:
        final = upstream.final()
        return common.json_response(response_from_final(
            final, name, thoughts=req.thoughts, tool_names=req.tool_names, stop=req.stop),
            headers=headers)
    sse = request.args.get("alt") == "sse"
    translator = GeminiStreamTranslator(name, thoughts=req.thoughts, tool_names=req.tool_names,
                                        stop=req.stop, sse=sse)
    answer = common.sse_response(frames(upstream, translator), headers, upstream)
    if not sse:
        answer.mimetype = "application/json"  # one JSON array, written as it comes
    return answer
