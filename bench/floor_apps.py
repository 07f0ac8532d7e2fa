"""bench.floor_apps
~~~~~~~~~~~~~~~~~~~
The least a gateway of this shape can do per request, as WSGI apps for
:mod:`bench.floor` (gunicorn's stock gthread worker serves them):

* ``constant``: Flask reads the JSON body and answers a constant, nothing else;
* ``proxy``: the same, plus one ``requests`` POST of the body to the upstream
  (``FLOOR_UPSTREAM``), whose answer is returned as it came: no continuity, no
  accounts, no translation, no record.
"""
from __future__ import annotations

import os

import requests
from flask import Flask, Response, request

constant = Flask("floor-constant")
proxy = Flask("floor-proxy")
_session = requests.Session()
_session.trust_env = False  # no proxy or netrc lookups per request
_UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "") + "/backend-api/codex/responses"
_ANSWER = b'{"id":"resp_floor","object":"response","status":"completed","output":[]}'


@constant.post("/v1/responses")
def answer():
    request.get_json()
    return Response(_ANSWER, mimetype="application/json")


@proxy.post("/v1/responses")
def forward():
    body = request.get_data()
    up = _session.post(_UPSTREAM, data=body, headers={
        "Content-Type": "application/json", "Authorization": "Bearer floor"}, timeout=30)
    return Response(up.content, status=up.status_code,
                    content_type=up.headers.get("Content-Type", "application/json"))
