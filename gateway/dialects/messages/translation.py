"""gateway.dialects.messages.translation
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
What the parts of one request's translation share (:mod:`.request`,
:mod:`.content`, :mod:`.tools`): the report of what was dropped
(:mod:`gateway.dialects.dropped`), the tool names, the tool calls seen so far,
the tools a ``tool_reference`` loaded, and whether a web search tool is offered.

Names in the report: a top-level field as itself (``top_k``), a nested one
dotted (``output_config.task_budget``, ``messages.foo``,
``tools.input_examples``), a content block as ``content.<type>``, a tool type
as ``tools.<type>``, a beta as ``beta:<name>``.
"""
from __future__ import annotations

from collections.abc import Set

from gateway.dialects.dropped import Dropped
# Shared with the chat dialect: the same hash-based names and ids, so a tool
# keeps one upstream name whichever dialect a client speaks.
from gateway.dialects.tools import ToolNames


class Translation(Dropped):
    """State shared by the parts of one request's translation."""

    __slots__ = ("names", "referenced", "calls", "web_search")

    def __init__(self, max_tool_name: int, referenced: Set[str] = frozenset()) -> None:
        super().__init__()
        self.names = ToolNames(max_tool_name)
        self.referenced = referenced  # tool names loaded by a tool_reference
        self.calls: dict[str, int] = {}  # call id -> position among all calls so far
        self.web_search = False  # a web_search tool is offered

    def drop_block(self, block) -> None:
        kind = block.get("type") if isinstance(block, dict) else None
        self.drop("content." + (kind if isinstance(kind, str) and kind else "invalid"))
