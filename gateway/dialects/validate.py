"""gateway.dialects.validate
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Checks every dialect shares, so the whole gateway speaks one message style:
``Missing required parameter: 'x'.`` and ``'x' must be <what>.``
"""
from __future__ import annotations

from ..security import scrub
from ..errors import bad_request

RETENTION_VALUES = ("in_memory", "24h")


def require_model(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise bad_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' must be a non-empty string.", param="model")
    check_model_name(model)
    return model


def check_model_name(model) -> None:
    """A model name that could not be logged, stored or sent back in a header as
    it is (too long, control characters) is refused before anything happens."""
    problem = scrub.model_problem(model)
    if problem:
        raise bad_request(f"{problem} Send a model id such as 'gpt-5-codex'.", param="model",
                          code="invalid_model")


def check_type(body: dict, name: str, types, label: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, types)
                              or (isinstance(value, bool) and bool not in _as_tuple(types))):
        raise bad_request(f"'{name}' must be {label}.", param=name)


def check_retention(body: dict) -> None:
    value = body.get("prompt_cache_retention")
    if value is not None and value not in RETENTION_VALUES:
        raise bad_request(
            f"Invalid 'prompt_cache_retention': {value!r}. Supported values are "
            "'in_memory' and '24h'.", param="prompt_cache_retention", code="invalid_value")


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)
