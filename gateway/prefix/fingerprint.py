"""gateway.prefix.fingerprint
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A compact fingerprint of one turn's prompt and how it relates to the last one.

The prompt the upstream caches is, in order, the instructions, the tool
definitions and the input items. A fingerprint keeps a short hash of each:
the instructions text, the tools exactly as serialised (key order is part of
what the model reads), and every input item as the model sees it: role and
text of a message (a string and a list of text parts read the same), a call's
name and its arguments *as sent* (re-spaced arguments are other tokens), an
output's text, a reasoning item's opaque content. Ids, ``status`` and
``annotations`` are not seen by the model and are left out, so a client that
drops them does not break anything.

A turn is classified against the fingerprints kept for its continuity key
(:func:`classify`):

* ``append``: the previous input is a prefix of this one (the cache can serve it all);
* ``new``: a different conversation on the same key (it keeps nothing the model
  produced in the one it diverges from), or the first turn seen;
* ``rewrite``: the previous prompt was changed at position k of n (1-based item
  position; 0 for instructions and tools, which come before the items), with the
  cause: ``instructions``, ``tools``, ``content`` (an item changed or was
  inserted), ``removed`` (an item is gone) or ``order`` (items moved).

Pure: no clocks, no I/O.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .. import jsonio

CAUSES = ("instructions", "tools", "content", "removed", "order")
APPEND, NEW, REWRITE = "append", "new", "rewrite"

# Items the model produced: a thread that kept none of them is a new conversation.
MODEL_KINDS = frozenset({"function_call", "custom_tool_call", "reasoning", "compaction",
                         "web_search_call", "local_shell_call", "image_generation_call"})
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})
UNSEEN = frozenset({"id", "status", "annotations", "logprobs", "call_id"})
_MODEL_MARK, _CLIENT_MARK = "m", "c"


def _digest(text: str) -> str:
    """64 bits of SHA-1: not a secret, only "did this change"; the fastest hashlib
    hash here (≈2 µs per KB against ≈5 for BLAKE2b), and a turn hashes its whole prompt."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass"),
                        usedforsecurity=False).hexdigest()[:16]


def _canonical(value) -> str:
    """Stable JSON of a value the model sees as structure (sorted keys, unseen fields out)."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in UNSEEN}
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def content_text(content) -> str | None:
    """A message's content as read: the text of its text parts; None when it has
    other parts (images, files), which are then compared as structure."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    out = []
    for part in content:
        if not (isinstance(part, dict) and part.get("type") in TEXT_PARTS
                and isinstance(part.get("text"), str)):
            return None
        out.append(part["text"])
    return "".join(out)


def items_of(body: dict) -> list:
    """The input items of a normalised Responses request (a string is one user message)."""
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return items if isinstance(items, list) else []


def is_model_item(item) -> bool:
    if not isinstance(item, dict):
        return False
    kind = item.get("type") or ("message" if "role" in item else None)
    return kind in MODEL_KINDS or (kind == "message" and item.get("role") == "assistant")


def item_view(item) -> str:
    """The item as the model sees it, as text (what is hashed)."""
    if not isinstance(item, dict):
        return _canonical(item)
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        text = content_text(item.get("content"))
        body = text if text is not None else _canonical(item.get("content"))
        return f"message|{item.get('role')}|{body}"
    if kind in ("function_call", "custom_tool_call"):
        args = item.get("arguments", item.get("input"))
        return f"call|{item.get('name')}|{args if isinstance(args, str) else _canonical(args)}"
    if kind in ("function_call_output", "custom_tool_call_output"):
        out = item.get("output")
        text = out if isinstance(out, str) else content_text(out)
        return f"output|{text if text is not None else _canonical(out)}"
    if kind in ("reasoning", "compaction"):
        return f"{kind}|{item.get('encrypted_content') or item.get('id')}"
    return f"{kind}|{_canonical(item)}"


def item_hash(item) -> str:
    """A short hash of the item as seen, marked ``m`` (model's) or ``c`` (client's)."""
    return (_MODEL_MARK if is_model_item(item) else _CLIENT_MARK) + _digest(item_view(item))


def tools_hash(tools) -> str:
    """The tools exactly as they will be serialised (key order included)."""
    if not tools:
        return ""
    return hashlib.sha1(jsonio.dumps(tools), usedforsecurity=False).hexdigest()[:16]


@dataclass(frozen=True)
class Fingerprint:
    instructions: str
    tools: str
    items: tuple[str, ...]

    @classmethod
    def of(cls, body: dict) -> "Fingerprint":
        instructions = body.get("instructions")
        return cls(_digest(instructions) if isinstance(instructions, str) and instructions else "",
                   tools_hash(body.get("tools")),
                   tuple(item_hash(item) for item in items_of(body)))

    def as_json(self) -> dict:
        return {"i": self.instructions, "t": self.tools, "h": list(self.items)}

    @classmethod
    def from_json(cls, data) -> "Fingerprint | None":
        try:
            return cls(str(data["i"]), str(data["t"]), tuple(str(h) for h in data["h"]))
        except (KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Verdict:
    """How a turn relates to the previous one on its key."""

    kind: str                    # append | new | rewrite
    cause: str | None = None     # one of CAUSES when kind == rewrite
    at: int = 0                  # 1-based item position of the break (0: instructions/tools)
    of: int = 0                  # items in the previous input
    thread: int | None = None    # which kept fingerprint it continued (None: new)

    @property
    def label(self) -> str | None:
        """``cause@k/n`` for a rewrite (the log line's ``cache_break=``), else None."""
        return f"{self.cause}@{self.at}/{self.of}" if self.kind == REWRITE else None


def _common(a: tuple, b: tuple) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def classify(current: Fingerprint, kept: list[Fingerprint]) -> Verdict:
    """The verdict of *current* against the fingerprints kept for its key (most
    recent first): the one it shares the longest item prefix with is its thread."""
    if not kept:
        return Verdict(NEW)
    best, shared = 0, -1
    for i, fp in enumerate(kept):
        common = _common(current.items, fp.items)
        if common > shared:
            best, shared = i, common
    prev = kept[best]
    n = len(prev.items)
    if shared == n:
        if current.instructions != prev.instructions:
            return Verdict(REWRITE, "instructions", 0, n, best)
        if current.tools != prev.tools:
            return Verdict(REWRITE, "tools", 0, n, best)
        return Verdict(APPEND, thread=best)
    k = shared
    first_model = next((i for i, h in enumerate(prev.items) if h[0] == _MODEL_MARK), n)
    present = set(current.items)
    if k <= first_model and not any(h in present for h in prev.items[k:] if h[0] == _MODEL_MARK):
        return Verdict(NEW)
    if current.instructions != prev.instructions:
        return Verdict(REWRITE, "instructions", 0, n, best)
    if current.tools != prev.tools:
        return Verdict(REWRITE, "tools", 0, n, best)
    return Verdict(REWRITE, _item_cause(current.items, prev.items, k), k + 1, n, best)


def _item_cause(cur: tuple, prev: tuple, k: int) -> str:
    """Why the item sequences part at *k* (prev[k] exists)."""
    if k >= len(cur):
        return "removed"
    was, now = prev[k], cur[k]
    later_prev, later_cur = prev[k + 1:], cur[k + 1:]
    if now in later_prev:
        return "order" if was in later_cur else "removed"
    if was in later_cur:
        return "order" if now in prev else "content"
    return "content"
