"""gateway.prefix.repair
~~~~~~~~~~~~~~~~~~~~~~~~~
Put back what the model produced, where a client re-sent it changed only in form.

The gateway remembers, per continuity key, the exact output items of the last
answers (:class:`Memory`). When a later turn carries one of them back
(matched by ``call_id``, by reasoning content, or by an assistant message's
text) and the client's copy differs from the original *only in form*, the
original item is sent instead:

* a function call whose ``arguments`` parse to the same JSON value (other
  spacing, other key order);
* an assistant message whose text is the same up to whitespace (a translation
  that re-rendered it), its parts named ``text``/``input_text`` instead of
  ``output_text``, or a plain string;
* ``id``, ``status``, ``annotations`` or ``logprobs`` dropped or added; a
  reasoning item missing its summary;
* the reasoning item that preceded a call or message in its answer, left out
  by a client that cannot carry it (Chat, Messages): inserted before it again.

A conversation's tool definitions keep the serialisation they were first seen
with when a later turn sends the same definitions with their keys in another
order (:func:`repair_tools`).

Nothing else is touched: an item that does not compare equal after these
normalisations (other arguments, other text, another name or call id, any other
field) is left exactly as the client sent it. Pure: no I/O.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import orjson

from .. import jsonio
from .fingerprint import TEXT_PARTS, content_text, item_view

FORM_ONLY = frozenset({"id", "status"})
PART_FORM_ONLY = frozenset({"annotations", "logprobs"})
MAX_TOOLS = 256  # first-seen tool definitions kept per key


_bytes = jsonio.dumps  # the serialisation the upstream body gets (key order kept)


def _canonical(value) -> bytes:
    """The same JSON value, whatever its key order."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson refuses (huge integers): the standard library
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _kind(item: dict) -> str | None:
    return item.get("type") or ("message" if "role" in item else None)


@dataclass
class Memory:
    """What is kept per continuity key: the last answers' output items (oldest
    first) and the first-seen serialisation of each tool definition."""

    answers: list[list[dict]] = field(default_factory=list)
    tools: dict[str, dict] = field(default_factory=dict)
    # The account that produced each answer, and the one this turn goes to first:
    # reasoning is only put back where it came from (its encrypted content is the
    # account's), never carried to another account.
    producers: list | None = None
    account: str | None = None


@dataclass
class _Index:
    calls: dict = field(default_factory=dict)       # call_id -> (answer, position)
    reasoning: dict = field(default_factory=dict)   # encrypted content or id -> (answer, pos)
    messages: dict = field(default_factory=dict)    # whitespace-free text -> [(answer, pos)]


def kept_for_repair(item) -> bool:
    """Whether an output item is one repair can restore (calls, reasoning, assistant
    messages); others (a generated image, a search call) are not kept."""
    return isinstance(item, dict) and (
        _kind(item) in ("function_call", "custom_tool_call", "reasoning")
        or (_kind(item) == "message" and item.get("role") == "assistant"))


def _reasoning_keys(item: dict) -> set[str]:
    """What identifies a reasoning item: its encrypted content and its id."""
    return {v for v in (item.get("encrypted_content"), item.get("id"))
            if isinstance(v, str) and v}


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _index(answers: list[list[dict]]) -> _Index:
    idx = _Index()
    for a, items in enumerate(answers):
        for pos, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            kind = _kind(item)
            if kind in ("function_call", "custom_tool_call") \
                    and isinstance(item.get("call_id"), str):
                idx.calls[item["call_id"]] = (a, pos)
            elif kind == "reasoning":
                for key in _reasoning_keys(item):
                    idx.reasoning[key] = (a, pos)
            elif kind == "message" and item.get("role") == "assistant":
                text = content_text(item.get("content"))
                if text is not None:
                    idx.messages.setdefault(_squeezed(text), []).append((a, pos))
    return idx


def _message_text(item) -> str | None:
    """The whitespace-free text of an assistant message (its lookup key)."""
    if not isinstance(item, dict) or _kind(item) != "message" or item.get("role") != "assistant":
        return None
    text = content_text(item.get("content"))
    return None if text is None else _squeezed(text)


def _message_slots(items: list, idx: _Index) -> dict[int, tuple]:
    """Which kept answer each assistant message of *items* is. The same text may
    be answered more than once: the last occurrences pair with the last kept
    answers, in order (older answers may have left the memory)."""
    seen: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        text = _message_text(item)
        if text is not None and text in idx.messages:
            seen.setdefault(text, []).append(i)
    slots = {}
    for text, where in seen.items():
        kept = idx.messages[text]
        for i, slot in zip(reversed(where), reversed(kept)):
            slots[i] = slot
    return slots


def _lookup(item, idx: _Index):
    if not isinstance(item, dict):
        return None
    kind = _kind(item)
    if kind in ("function_call", "custom_tool_call"):
        return idx.calls.get(item.get("call_id"))
    if kind == "reasoning":
        return next((idx.reasoning[k] for k in sorted(_reasoning_keys(item))
                     if k in idx.reasoning), None)
    return None


def _rest(item: dict, skip) -> dict:
    return {k: v for k, v in item.items() if k not in skip}


def _same_arguments(a, b) -> bool:
    if a == b:
        return True
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    try:
        return _canonical(jsonio.loads(a)) == _canonical(jsonio.loads(b))
    except ValueError:
        return False


def _same_message(sent: dict, orig: dict) -> bool:
    if sent.get("role") != orig.get("role"):
        return False
    if _rest(sent, FORM_ONLY | {"content", "type"}) != _rest(orig, FORM_ONLY | {"content", "type"}):
        return False
    parts = orig.get("content")
    if not isinstance(parts, list) or any(
            not isinstance(p, dict) or p.get("type") not in TEXT_PARTS
            or set(p) - PART_FORM_ONLY - {"type", "text"} for p in parts):
        return False
    text, sent_text = content_text(parts), content_text(sent.get("content"))
    if text is None or sent_text is None:
        return False
    if isinstance(sent.get("content"), list) and any(
            set(p) - PART_FORM_ONLY - {"type", "text"} for p in sent["content"]):
        return False
    return " ".join(text.split()) == " ".join(sent_text.split())


def same_content(sent: dict, orig: dict) -> bool:
    """Whether *sent* is *orig* changed only in form (see the module docstring)."""
    kind = _kind(orig)
    if _kind(sent) != kind:
        return False
    if kind == "function_call":
        return (_rest(sent, FORM_ONLY | {"arguments"}) == _rest(orig, FORM_ONLY | {"arguments"})
                and _same_arguments(sent.get("arguments"), orig.get("arguments")))
    if kind == "message":
        return _same_message(sent, orig)
    if kind == "reasoning":
        # the client may have dropped its summary (never seen by the model) but
        # nothing it kept may differ
        rest = _rest(sent, FORM_ONLY | {"summary"})
        return all(orig.get(k) == v for k, v in rest.items()) and \
            sent.get("encrypted_content") == orig.get("encrypted_content")
    return _rest(sent, FORM_ONLY) == _rest(orig, FORM_ONLY)


def worth_restoring(sent: dict, orig: dict) -> bool:
    """Whether an item equal in content differs in what the upstream gets: the text
    the model reads (re-spaced arguments, re-rendered text), or an id or status
    dropped or added. Keys in another order or a field sent as null change
    nothing (Codex CLI sends its items so): such an item is left as it is."""
    if item_view(sent) != item_view(orig):
        return True
    return {k for k in FORM_ONLY if k in sent} != {k for k in FORM_ONLY if k in orig}


def repair_items(items: list, answers: list[list[dict]], producers: list | None = None,
                 account: str | None = None) -> tuple[list, int]:
    """*items* with the model's own items restored; the number restored or inserted.
    The list returned is *items* itself when nothing changed. A left-out reasoning
    item is inserted only for answers *account* produced (all, when *producers* is None)."""
    if not answers or not items:
        return items, 0
    idx = _index(answers)
    if not (idx.calls or idx.reasoning or idx.messages):
        return items, 0
    present: set[str] = set()  # every reasoning item the client sent, by content and by id
    for i in items:
        if isinstance(i, dict) and _kind(i) == "reasoning":
            present |= _reasoning_keys(i)
    out: list = []
    restored = 0
    slots = _message_slots(items, idx)
    for i, item in enumerate(items):
        where = slots.get(i) or _lookup(item, idx)
        if where is not None:
            a, pos = where
            orig = answers[a][pos]
            if _bytes(item) != _bytes(orig):
                if not same_content(item, orig):
                    out.append(item)
                    continue
                if worth_restoring(item, orig):
                    item = copy.deepcopy(orig)
                    restored += 1
            before = answers[a][pos - 1] if pos else None
            if (isinstance(before, dict) and _kind(before) == "reasoning"
                    and _kind(orig) != "reasoning" and not _reasoning_keys(before) & present
                    and (producers is None or producers[a] == account)):
                out.append(copy.deepcopy(before))
                present |= _reasoning_keys(before)
                restored += 1
        out.append(item)
    return (out, restored) if restored else (items, 0)


def tool_key(tool) -> str:
    return _canonical(tool).decode()


def repair_tools(tools, first_seen: dict[str, dict]) -> tuple[list | None, int]:
    """*tools* with each definition in its first-seen serialisation; remembers new
    ones in *first_seen* (bounded). Returns (the list, or None when unchanged; count)."""
    if not isinstance(tools, list) or not tools:
        return None, 0
    out, restored = [], 0
    for tool in tools:
        key = tool_key(tool)
        kept = first_seen.get(key)
        if kept is None:
            if len(first_seen) < MAX_TOOLS:
                first_seen[key] = tool
        elif _bytes(kept) != _bytes(tool):
            tool = copy.deepcopy(kept)
            restored += 1
        out.append(tool)
    return (out, restored) if restored else (None, 0)


def repair(body: dict, memory: Memory) -> int:
    """Repair *body* (a normalised Responses request) in place; how many items and
    tool definitions were restored."""
    total = 0
    tools, n = repair_tools(body.get("tools"), memory.tools)
    if tools is not None:
        body["tools"] = tools
        total += n
    items = body.get("input")
    if isinstance(items, list):
        fixed, n = repair_items(items, memory.answers, memory.producers, memory.account)
        if n:
            body["input"] = fixed
            total += n
    return total
