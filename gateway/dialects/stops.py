"""gateway.dialects.stops
~~~~~~~~~~~~~~~~~~~~~~~~~~
Stop sequences emulated on a text stream, for every dialect that offers them
(chat ``stop``, Messages ``stop_sequences``): the Responses upstream has no
such parameter, so the gateway ends the answer itself.

Text is released as soon as it cannot be the start of a stop sequence; a
tail that could be is held back until the next delta decides.
"""
from __future__ import annotations


def first_stop(text: str, stops: list[str]) -> tuple[int, str | None]:
    """``(position, sequence)`` of the earliest stop sequence in ``text``, else ``(-1, None)``."""
    cut, hit = -1, None
    for s in stops:
        k = text.find(s)
        if k >= 0 and (cut < 0 or k < cut):
            cut, hit = k, s
    return cut, hit


def held_length(text: str, stops: list[str]) -> int:
    """Length of the longest tail of ``text`` that could start a stop sequence."""
    n, keep = len(text), 0
    for s in stops:
        for k in range(min(len(s) - 1, n), keep, -1):
            if text.startswith(s[:k], n - k):
                keep = k
                break
    return keep


def release(held: str, delta: str, stops: list[str]) -> tuple[str, str, str | None]:
    """A stream's next text: of *held* (what the last call kept back) and *delta*,
    ``(text to send, text to hold, the stop sequence hit or None)``. After a hit the
    text is what came before it and nothing is held; else the tail that could start
    a stop sequence is held for the next delta to decide."""
    text = held + delta if held else delta
    cut, hit = first_stop(text, stops)
    if hit is not None:
        return text[:cut], "", hit
    keep = held_length(text, stops)
    return (text[:-keep], text[-keep:], None) if keep else (text, "", None)


def stop_list(value) -> tuple[list[str], bool]:
    """A client's stop sequences, cleaned: ``(unique non-empty strings, whether anything
    had to be dropped)``. None is no stop sequences; a non-list is dropped whole."""
    if value is None:
        return [], False
    if not isinstance(value, list):
        return [], True
    out = [s for s in value if isinstance(s, str) and s]
    return list(dict.fromkeys(out)), len(out) != len(value)
