"""gateway.api.key_usage
~~~~~~~~~~~~~~~~~~~~~~~~~
``GET /v1/usage``: the calling key's own usage and limits (today, this week,
what remains, when each resets), and nothing about other keys. Only a key with
``show_quota`` also sees the accounts' quota windows.
"""
from __future__ import annotations

import time

from flask import Blueprint, g

from ..errors import GatewayError
from ..policy.keys_cli import known_keys
from ..policy.report import key_reports
from . import common

bp = Blueprint("key_usage", __name__)


@bp.get("/v1/usage")
def own_usage():
    common.authenticate()
    if g.principal is None:
        raise GatewayError(400, "This gateway has no client keys, so there is no key to report "
                           "on: `codex-gateway usage` on the gateway host shows all usage.",
                           code="no_client_key")
    st = common.state()
    gate = st.executor.gate
    name = next((n for i, n in known_keys(st.config) if i == g.principal), "")
    report = key_reports([(g.principal, name)], gate.policies, gate.counters, st.usage.store,
                         time.time())[0]
    report["object"] = "key.usage"
    if gate.shows_quota(g.principal):
        report["quota"] = [{"account": row["id"], **row["rate_limits"]}
                           for row in st.pool.rows() if row["rate_limits"]]
    return common.json_response(report)
