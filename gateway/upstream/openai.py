"""gateway.upstream.openai
~~~~~~~~~~~~~~~~~~~~~~~~~~~
The OpenAI Responses API (``api.openai.com/v1``) with an API key.

It accepts ``prompt_cache_retention`` and keys the cache on the body
``prompt_cache_key`` alone, so no session header is sent by default. The
gateway always streams from it, so both upstreams share one reading path.
Codex CLI's ``x-codex-*`` headers mean nothing to it and are not forwarded.
"""
from __future__ import annotations

from .base import Profile


class OpenAIProfile(Profile):
    forward_exact = frozenset({"x-client-request-id"})

    def __init__(self, ucfg):
        super().__init__(ucfg.openai_base_url, ucfg.openai_drop_params,
                         ucfg.openai_session_headers, ucfg)

    def normalise(self, body: dict) -> None:
        body["stream"] = True
        body.setdefault("store", False)
