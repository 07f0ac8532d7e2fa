"""gateway.responses_store.cli
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``codex-gateway responses purge``: forget every stored response now (SQLite
or Redis, as ``[state] backend`` says). Running gateways need no restart: a
purged id is answered like any unknown one.
"""
from __future__ import annotations

import sys

from ..state import StateUnavailable
from . import open_keeper


def register(sub) -> None:
    responses = sub.add_parser("responses", help="the response store (previous_response_id, "
                               "GET /v1/responses/{id})")
    rsub = responses.add_subparsers(dest="responses_command", required=True)
    purge = rsub.add_parser("purge", help="delete every stored response")
    purge.set_defaults(func=cmd_purge)


def cmd_purge(cfg, args) -> int:
    keeper = open_keeper(cfg)
    if keeper is None:
        print("responses.store = false: nothing is stored.", file=sys.stderr)
        return 0
    try:
        count = keeper.backend.purge()
    except StateUnavailable as exc:
        print(f"codex-gateway: {exc}", file=sys.stderr)
        return 1
    print(f"purged {count} stored responses from {keeper.where}")
    return 0
