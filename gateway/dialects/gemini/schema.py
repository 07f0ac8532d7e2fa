"""gateway.dialects.gemini.schema
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Gemini schemas -> JSON Schema, for function ``parameters`` and response formats.

Gemini accepts an OpenAPI 3.0 subset (``parameters``, ``responseSchema``) with
upper-case types (``"OBJECT"``, ``"STRING"``) and ``nullable``, and JSON
Schema (``parametersJsonSchema``, ``responseJsonSchema``), which clients fill
with the same upper-case types too (Gemini CLI's router does). The Responses
upstream wants plain JSON Schema: types lower-cased, ``nullable: true`` as a
``"null"`` type, Gemini's ``propertyOrdering`` and the ``$schema`` tag removed.

Property *names* are data, never keywords: only the keyword positions are
walked (``properties`` and ``$defs`` by value, ``items``, ``anyOf`` …).
"""
from __future__ import annotations

_BY_NAME = frozenset(("properties", "$defs", "definitions", "patternProperties"))
_ONE = frozenset(("items", "additionalProperties", "not", "contains", "propertyNames",
                  "if", "then", "else", "unevaluatedProperties", "unevaluatedItems"))
_MANY = frozenset(("anyOf", "oneOf", "allOf", "prefixItems"))
_GEMINI_ONLY = frozenset(("propertyOrdering", "nullable", "$schema"))


def json_schema(schema) -> dict:
    """A Gemini schema (either flavour) as JSON Schema; a non-object gives ``{}``."""
    if not isinstance(schema, dict):
        return {}
    out: dict = {}
    for key, value in schema.items():
        if key in _GEMINI_ONLY:
            continue
        if key == "type":
            out["type"] = _type(value)
        elif key in _BY_NAME and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _ONE and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key in _MANY and isinstance(value, list):
            out[key] = [json_schema(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("nullable") is True and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = types if "null" in types else [*types, "null"]
    return out


def _type(value):
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value
