"""gateway.dialects.dropped
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
What a request translation did not forward, as the client is told in the
``x-gateway-dropped-params`` response header (the Messages and Gemini dialects,
which drop and report what they cannot serve rather than refuse it).

Names are the dialect's own paths (``top_k``, ``generationConfig.topK``,
``tools.googleSearch``). They are sanitised (``[A-Za-z0-9_.:-]``, 64
characters, at most 32 names, the 32nd ``...`` when there were more) because
they end up in a response header.
"""
from __future__ import annotations

import re

UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")  # what may not reach a header value
MAX_REPORTED = 32
NAME_LIMIT = 64


class Dropped:
    """The report of one translation: what it dropped, each name once, in order."""

    __slots__ = ("_dropped",)

    def __init__(self) -> None:
        self._dropped: dict[str, None] = {}

    def drop(self, name: str) -> None:
        self._dropped.setdefault(UNSAFE.sub("_", name)[:NAME_LIMIT] or "_", None)

    def reported(self) -> list[str]:
        names = list(self._dropped)
        return names if len(names) <= MAX_REPORTED else names[:MAX_REPORTED - 1] + ["..."]

    def listed(self, value, name: str) -> list:
        """*value* where a list is expected: ``[]`` when it is absent, and when it is not
        a list (then *name* is reported as dropped)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.drop(name)
            return []
        return value
