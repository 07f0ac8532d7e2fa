"""gateway.api.admin
~~~~~~~~~~~~~~~~~~~~~
``GET /metrics`` (Prometheus) and ``GET /status`` (the HTML status page),
for admin keys only: no key is 401, a client key 403 (JSON errors in
OpenAI's shape, like every other error). ``/status`` also takes HTTP Basic
with the admin key as the password, so a browser can open it, and asks for
it with ``WWW-Authenticate`` when no key came.
"""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..auth import ADMIN_REALM
from ..errors import GatewayError
from ..policy.keys_cli import known_keys
from ..policy.report import gate_reports as key_reports
from ..usage import status_page
from . import common

bp = Blueprint("admin", __name__)


def _admin() -> str:
    return common.state().admin_keys.check(request.headers.get("Authorization"))


@bp.get("/metrics")
def metrics():
    """Prometheus text exposition, summed over every gunicorn worker."""
    _admin()
    body, content_type = common.state().usage.render_metrics()
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


@bp.get("/status")
def status():
    """The status page (self-contained HTML, no script)."""
    try:
        _admin()
    except GatewayError as err:
        if err.status == 401:
            g.www_authenticate = True  # the browser asks for the admin key
        raise
    st = common.state()
    data = st.usage.status_data()
    data.keys = key_reports(known_keys(st.config), st.executor.gate, data.generated_at,
                            st.usage.store)
    page = status_page.render(data)
    return Response(page, mimetype="text/html", headers={
        "Cache-Control": "no-store", "Content-Security-Policy": status_page.CSP,
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


@bp.after_request
def _ask_for_credentials(resp):
    if g.get("www_authenticate") and resp.status_code == 401:
        resp.headers["WWW-Authenticate"] = ADMIN_REALM
    return resp
