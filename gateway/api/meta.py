"""gateway.api.meta
~~~~~~~~~~~~~~~~~~~~
``GET /v1/models`` and ``GET /healthz``.
"""
from __future__ import annotations

import time

from flask import Blueprint

from ..executor import NEEDS_LOGIN_MESSAGE
from ..executor import NO_ACCOUNT_MESSAGE
from . import common

bp = Blueprint("meta", __name__)
_CREATED = int(time.time())


@bp.get("/v1/models")
def models():
    """The configured model list, in OpenAI's shape."""
    common.authenticate()
    data = [{"id": m, "object": "model", "created": _CREATED, "owned_by": "openai"}
            for m in common.state().config.models]
    return common.json_response({"object": "list", "data": data})


@bp.get("/healthz")
def healthz():
    """Liveness, whether any account can serve and whether the state store
    answers (an instance keeps serving without it); never reveals secrets."""
    pool = common.state().pool
    accounts = pool.accounts()
    usable = [a for a in accounts if pool.usable(a)]
    store = pool.state_status()
    payload = {"status": "ok" if usable and store["ok"] else "degraded",
               "accounts": len(accounts), "usable_accounts": len(usable), "state": store}
    if not accounts:
        payload["message"] = NEEDS_LOGIN_MESSAGE if pool.records() else NO_ACCOUNT_MESSAGE
    return common.json_response(payload)
