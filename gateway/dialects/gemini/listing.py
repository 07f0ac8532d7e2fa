"""gateway.dialects.gemini.listing
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``GET /v1beta/models`` and ``GET /v1beta/models/{model}`` in Google's shape.

The list is the gateway's catalog (the models an account here serves), each
as ``models/<slug>``. One model is looked up through the same resolution as a
request (catalog, aliases, ``--models``), so ``models/gemini-2.5-pro`` is
found and says which model serves it (``baseModelId``).
"""
from __future__ import annotations

METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
OUTPUT_TOKEN_LIMIT = 128_000


def model_entry(name: str, base: str, context: int | None, display: str | None = None) -> dict:
    return {"name": f"models/{name}", "baseModelId": base, "version": base,
            "displayName": display or name,
            "description": f"Served by codex-gateway as {base}.",
            "inputTokenLimit": context or 0, "outputTokenLimit": OUTPUT_TOKEN_LIMIT,
            "supportedGenerationMethods": list(METHODS), "thinking": True}


def model_list(openai_list: dict) -> dict:
    """The catalog as listed to OpenAI clients (:func:`gateway.models.openai_list`)."""
    return {"models": [model_entry(m["id"], m["id"], m.get("context_window"))
                       for m in openai_list.get("data", ())]}
