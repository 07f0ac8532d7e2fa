"""gateway.upstream.codex
~~~~~~~~~~~~~~~~~~~~~~~~~~
The ChatGPT Codex backend (``chatgpt.com/backend-api/codex``).

It only streams, refuses stored responses, wants a string ``instructions``
and rejects a list of parameters (see shared/reference). Those facts are
configuration with defaults, because the backend changes without notice.
"""
from __future__ import annotations

from ..errors import bad_request
from .base import Profile

ENCRYPTED_REASONING = "reasoning.encrypted_content"


class CodexProfile(Profile):
    kind = "codex"

    def __init__(self, ucfg):
        super().__init__(ucfg.codex_base_url, ucfg.codex_drop_params,
                         ucfg.codex_session_headers, ucfg)

    def normalise(self, body: dict) -> None:
        if body.get("previous_response_id"):
            raise bad_request(
                "previous_response_id cannot work here: the Codex backend does not store "
                "responses (store must be false). Send the full conversation in 'input' instead.",
                param="previous_response_id", code="previous_response_not_supported")
        body.pop("previous_response_id", None)
        body["stream"] = True
        body["store"] = False
        include = body.get("include")
        include = list(include) if isinstance(include, list) else []
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        body["include"] = include
        if not isinstance(body.get("instructions"), str):
            body["instructions"] = ""

    def headers(self, creds, client_headers, cont):
        headers = super().headers(creds, client_headers, cont)
        if creds.account_id:
            headers["chatgpt-account-id"] = creds.account_id
        originator = client_headers.get("originator")
        headers["originator"] = originator or self.cfg.originator
        headers["User-Agent"] = (client_headers.get("User-Agent") if originator
                                 else None) or self.cfg.user_agent
        return headers
