"""gateway.upstream.ws.delta
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
What a turn on a conversation's socket must upload (pure).

When the new full input is what this socket sent for its last response, then
that response's output, then at least one new item, only the new items go,
with ``previous_response_id``. Anything else is sent in full. Items are compared
by what the model sees (ids, ``status`` and empty annotations aside), and
reasoning items the client could not send back may be missing: the backend
keeps them. What a socket remembers is a 16-byte digest per item.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Held:
    """What a socket remembers of one item: a digest of what the model sees."""

    digest: bytes
    reasoning: bool = False


def view(item):
    """The part of an input item the model sees: without ``id`` and ``status``,
    text parts as one ``text`` type, empty ``annotations``/``logprobs`` dropped;
    a reasoning item is its encrypted content (or id)."""
    if not isinstance(item, dict):
        return item
    kind = item.get("type")
    if kind == "reasoning":
        return ["reasoning", item.get("encrypted_content") or item.get("id")]
    out = {k: v for k, v in item.items() if k != "id" and k != "status"}
    if kind == "message" or (kind is None and "role" in item):
        out["type"] = "message"
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict):
                    part = {k: v for k, v in part.items()
                            if not (k in ("annotations", "logprobs") and not v)}
                    if part.get("type") in ("input_text", "output_text"):
                        part["type"] = "text"
                parts.append(part)
            out["content"] = parts
    return out


def hold(item) -> Held:
    """The :class:`Held` digest of *item* (stable across processes)."""
    value = view(item)
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return Held(hashlib.blake2b(data, digest_size=16).digest(),
                isinstance(item, dict) and item.get("type") == "reasoning")


def as_held(value) -> Held:
    return value if isinstance(value, Held) else hold(value)


def split(sent: Sequence, output: Sequence, new_input: Sequence) -> int | None:
    """Where the new items of *new_input* begin, or None when it does not extend
    *sent* + *output* by at least one item.

    *sent* is the full input the socket sent for its last response, *output*
    that response's output items (items or :class:`Held` digests, either way).
    Reasoning items of the output may be absent from *new_input* (a Chat client
    cannot send them back; the backend still holds them); every other item must
    be there, in order.
    """
    n = len(sent)
    if len(new_input) <= n:
        return None
    for i in range(n):
        if as_held(sent[i]) != as_held(new_input[i]):
            return None
    j = n
    for out in output:
        out = as_held(out)
        if j < len(new_input) and out == as_held(new_input[j]):
            j += 1
        elif not out.reasoning:
            return None
    return j if j < len(new_input) else None


def delta(sent: Sequence, output: Sequence, new_input: Sequence) -> list | None:
    """The items to send after ``previous_response_id``, or None: send in full."""
    j = split(sent, output, new_input)
    return None if j is None else list(new_input[j:])
