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
