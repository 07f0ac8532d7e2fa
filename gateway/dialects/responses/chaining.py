"""gateway.dialects.responses.chaining
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A request that leans on stored responses, made whole before it goes upstream.

The Codex backend keeps nothing (``store`` must be false), so what OpenAI
resolves server-side the gateway resolves from its response store:

* ``previous_response_id``: the input becomes ``prev.input → prev.output →
  input`` (the Open Responses order) and the field goes; the upstream sees a
  client that resent its history, so the conversation keeps its continuity
  envelope and its prompt cache.
* ``{"type": "item_reference", "id": …}``: replaced by the exact item it names
  (a reasoning item with its ``encrypted_content``, an assistant message …).

Only the client key's own responses are found: another key's id is answered
exactly like an unknown one. The store is handed in as two functions, so this
module is pure.
"""
from __future__ import annotations

from collections.abc import Callable

from ...errors import GatewayError

# (response id) -> (full input, output) of the caller's stored response, or None
FindResponse = Callable[[str], "tuple[list, list] | None"]
# (item id) -> the caller's stored output item, or None
FindItem = Callable[[str], "dict | None"]


def needs_store(body: dict) -> bool:
    """Whether the request names anything only the store can give."""
    if body.get("previous_response_id") is not None:
        return True
    items = body.get("input")
    return isinstance(items, list) and any(_is_reference(i) for i in items)


def expand(body: dict, find_response: FindResponse, find_item: FindItem) -> int:
    """Resolve *body* in place; returns how many items of the final input the request
    itself carried. Raises the client's 400 (unknown previous response) or 404
    (unknown item) naming the id."""
    items = body.get("input")
    items = list(items) if isinstance(items, list) else []
    items = [_resolve(i, find_item) if _is_reference(i) else i for i in items]
    previous = body.pop("previous_response_id", None)
    if previous is None:
        body["input"] = items
        return len(items)
    if not isinstance(previous, str) or not previous:
        raise GatewayError(400, "'previous_response_id' must be a non-empty string.",
                           param="previous_response_id", code="invalid_type")
    found = find_response(previous)
    if found is None:
        raise previous_not_found(previous)
    prev_input, prev_output = found
    body["input"] = [*prev_input, *prev_output, *items]
    return len(items)


def previous_not_found(rid: str) -> GatewayError:
    """OpenAI's answer for an id it does not hold (or that another key made)."""
    return GatewayError(400, f"Previous response with id '{_short(rid)}' not found.",
                        param="previous_response_id", code="previous_response_not_found")


def _is_reference(item) -> bool:
    return isinstance(item, dict) and item.get("type") == "item_reference"


def _resolve(ref: dict, find_item: FindItem) -> dict:
    item_id = ref.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise GatewayError(400, "An 'item_reference' input item needs a string 'id'.",
                           param="input", code="invalid_value")
    item = find_item(item_id)
    if item is None:
        raise GatewayError(
            404, f"Item with id '{_short(item_id)}' not found: the gateway keeps only the "
            "responses this client key created with store enabled, for the store's retention. "
            "Send the item itself instead of a reference.", param="input", code="item_not_found")
    return item


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
