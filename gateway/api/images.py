"""gateway.api.images
~~~~~~~~~~~~~~~~~~~~~~
``POST /v1/images/generations`` and ``POST /v1/images/edits``: each image is one
Responses request with the ``image_generation`` tool through the shared
executor (so it takes the usual continuity envelope, failover, usage row and
metrics). ``n`` > 1 runs that many requests, ``images.concurrency`` at once; one
failing fails the call (nothing half-returned).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint
from flask import g
from flask import request
from werkzeug.datastructures import Headers

from ..dialects.images import request as images_request
from ..dialects.images.events import ImagesStreamTranslator, images_body
from ..dialects.translator import frames
from ..dialects.validate import check_model_name
from ..errors import bad_request
from ..executor import Call
from . import common

bp = Blueprint("images", __name__)


@bp.before_request
def _begin():
    common.begin("images")
    common.authenticate()


def _model(asked) -> str:
    cfg = common.state().config
    default = cfg.images.model or cfg.models.get("main_model") or images_request.DEFAULT_MODEL
    return images_request.upstream_model(asked, default)


@bp.post("/v1/images/generations")
def generations():
    body = common.json_body()
    cfg = common.state().config.images
    req = images_request.generation_request(body, model=_model(body.get("model")),
                                            url_format=cfg.url_format)
    return _serve(req)


@bp.post("/v1/images/edits")
def edits():
    if not request.mimetype.startswith("multipart/"):
        raise bad_request("Send the edit as multipart/form-data with image (or image[]) files "
                          "and a prompt.")
    form = request.form
    fields = {name: form.get(name) for name in form}
    check_model_name(fields.get("model"))
    if g.get("record") is not None and isinstance(fields.get("model"), str):
        g.record.model_asked = fields["model"]
    uploads = [images_request.Upload(f.read(), f.filename or "")
               for name in ("image", "image[]") for f in request.files.getlist(name)]
    mask_file = request.files.get("mask")
    mask = images_request.Upload(mask_file.read(), mask_file.filename or "") if mask_file else None
    cfg = common.state().config.images
    req = images_request.edit_request(fields, uploads, mask, model=_model(fields.get("model")),
                                      url_format=cfg.url_format,
                                      max_image_bytes=cfg.max_image_bytes)
    return _serve(req)


def _serve(req: images_request.ImagesRequest):
    st = common.state()
    headers = Headers(request.headers)  # read by the worker threads below
    principal = g.principal

    def call(record, stream=False) -> Call:
        return Call(body=dict(req.responses), headers=headers, principal=principal,
                    endpoint="images", dropped=list(req.dropped), record=record, stream=stream,
                    keepalive=st.keepalive if stream else 0.0)

    if req.stream:
        upstream = st.executor.open(call(g.record, stream=True))
        return common.sse_response(frames(upstream, ImagesStreamTranslator(req)),
                                   upstream.client_headers(), upstream)

    def one(record):
        upstream = st.executor.open(call(record))
        return upstream.client_headers(), upstream.final()

    records = [g.record] + [st.executor.record_for("images", principal, model=g.record.model_asked)
                            for _ in range(req.n - 1)]
    if req.n == 1:
        answers = [one(g.record)]
    else:
        with ThreadPoolExecutor(max_workers=min(req.n, st.config.images.concurrency)) as pool:
            futures = [pool.submit(one, record) for record in records]
            answers = [f.result() for f in futures]  # the first failure is raised, in order
    return common.json_response(images_body(req, [final for _, final in answers]),
                                headers=answers[0][0])
