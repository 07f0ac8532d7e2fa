"""gateway.dialects.messages.translation
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
What the parts of one request's translation share (:mod:`.request`,
:mod:`.content`, :mod:`.tools`): the report of what was dropped, the tool
names, the tool calls seen so far, the tools a ``tool_reference`` loaded, and
whether a web search tool is offered.

Names in the report: a top-level field as itself (``top_k``), a nested one
dotted (``output_config.task_budget``, ``messages.foo``,
``tools.input_examples``), a content block as ``content.<type>``, a tool type
as ``tools.<type>``, a beta as ``beta:<name>``. They are sanitised
(``[A-Za-z0-9_.:-]``, 64 characters, at most 32 names) because they end up in
a response header (``x-gateway-dropped-params``).
"""
from __future__ import annotations

import re
from collections.abc import Set

# Shared with the chat dialect: the same hash-based names and ids, so a tool
# keeps one upstream name whichever dialect a client speaks.
from gateway.dialects.tools import ToolNames

UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")  # what may not reach a header value
_MAX_DROPPED = 32
_NAME_LIMIT = 64


class Translation:
    """State shared by the parts of one request's translation."""

    __slots__ = ("names", "referenced", "calls", "web_search", "_dropped")

    def __init__(self, max_tool_name: int, referenced: Set[str] = frozenset()) -> None:
        self.names = ToolNames(max_tool_name)
        self.referenced = referenced  # tool names loaded by a tool_reference
        self.calls: dict[str, int] = {}  # call id -> position among all calls so far
        self.web_search = False  # a web_search tool is offered
        self._dropped: dict[str, None] = {}

    def drop(self, name: str) -> None:
        self._dropped.setdefault(UNSAFE.sub("_", name)[:_NAME_LIMIT] or "_", None)

    def drop_block(self, block) -> None:
        kind = block.get("type") if isinstance(block, dict) else None
        self.drop("content." + (kind if isinstance(kind, str) and kind else "invalid"))

    def reported(self) -> list[str]:
        names = list(self._dropped)
        return names if len(names) <= _MAX_DROPPED else names[:_MAX_DROPPED - 1] + ["..."]
