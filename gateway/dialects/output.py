"""gateway.dialects.output
~~~~~~~~~~~~~~~~~~~~~~~~~~~
What every translated dialect reads of a Responses answer, whatever it renders:
the items of a final response object, the text of a message item and of a
reasoning item, and the two events that stream reasoning text (each numbers its
parts with a field of its own). Parts of reasoning are kept apart by a blank
line (``PART_BREAK``), streamed or not, as clients show them.
"""
from __future__ import annotations

PART_BREAK = "\n\n"

# The events that stream reasoning text -> the field that numbers their parts.
REASONING_DELTAS = {
    "response.reasoning_summary_text.delta": "summary_index",  # the summary (effort + summary)
    "response.reasoning_text.delta": "content_index",          # the raw reasoning, where sent
}


def items(response: dict) -> list[dict]:
    """The output items of a final response object (entries that are not objects skipped)."""
    output = response.get("output")
    return [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []


def reasoning_parts(item: dict) -> list[str]:
    """The texts of a reasoning item: its summary, else its content (raw reasoning)."""
    parts = item.get("summary") or item.get("content") or ()
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


def reasoning_text(item: dict) -> str:
    """A reasoning item's text: its non-empty parts, a blank line apart."""
    return PART_BREAK.join(t for t in reasoning_parts(item) if t)


def message_text(item: dict) -> tuple[str, bool]:
    """All text of a message item (``output_text`` and ``refusal`` parts), and whether
    any of it was a refusal."""
    texts, refused = [], False
    for part in item.get("content") or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "output_text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
            refused = True
    return "".join(texts), refused


def reasoning_handlers(on_delta) -> dict:
    """``Translator.HANDLERS`` entries for both reasoning events:
    ``on_delta(translator, data, part_key)``, *part_key* naming the field that
    numbers the event's parts."""
    def bind(part_key: str):
        return lambda translator, data: on_delta(translator, data, part_key)
    return {kind: bind(key) for kind, key in REASONING_DELTAS.items()}
