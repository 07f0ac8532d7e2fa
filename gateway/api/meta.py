"""gateway.api.meta
~~~~~~~~~~~~~~~~~~~~
``GET /v1/models`` and ``GET /healthz``.
"""
from __future__ import annotations

from flask import Blueprint
from flask import request

from .. import models
from ..errors import GatewayError
from . import common
from . import gemini

bp = Blueprint("meta", __name__)


@bp.get("/v1/models")
@bp.get("/backend-api/codex/models")
def list_models():
    """The model catalog: OpenAI's shape, or Codex CLI's with ``?client_version=``
    (Codex CLI with command or ChatGPT auth reads only that one), or Google's
    for a Gemini client."""
    if gemini.wants_list(request):
        return gemini.list_models()
    common.authenticate()
    st = common.state()
    catalog = st.executor.catalog
    kinds = {a.kind for a in st.pool.accounts()} or None
    version = request.args.get("client_version")
    if version is not None:
        payload = models.codex_list(catalog, version, kinds=kinds,
                                    upstream=st.executor.catalogs.codex_entries(version))
        return common.json_response(payload, headers={"ETag": models.codex_etag(payload)})
    return common.json_response(models.openai_list(catalog, kinds=kinds,
                                                   served=st.pool.served_models()))


@bp.get("/healthz")
def healthz():
    """Liveness, whether any account can serve and whether the state store
    answers (an instance keeps serving without it); never reveals secrets."""
    st = common.state()
    pool = st.pool
    accounts = pool.accounts()
    try:
        usable, message = pool.select("").ready(), None
    except GatewayError as err:  # none may serve: say why (and what to run)
        usable, message = [], err.message
    store = pool.state_status()
    payload = {"status": "ok" if usable and store["ok"] else "degraded",
               "accounts": len(accounts), "usable_accounts": len(usable), "state": store,
               "catalog": st.executor.catalogs.status()}
    if message:
        payload["message"] = message
    return common.json_response(payload)
