"""gateway.dialects.dropped: the report behind ``x-gateway-dropped-params``, shared by
the Messages and Gemini translations."""
from __future__ import annotations

from gateway.dialects.dropped import MAX_REPORTED, Dropped


def test_names_are_reported_once_in_order_and_safe_for_a_header():
    d = Dropped()
    for name in ("top_k", "tools.google Search", "top_k", "x" * 100, ""):
        d.drop(name)
    assert d.reported() == ["top_k", "tools.google_Search", "x" * 64, "_"]


def test_past_the_limit_the_last_name_says_there_were_more():
    d = Dropped()
    for n in range(MAX_REPORTED):
        d.drop(f"f{n}")
    assert d.reported() == [f"f{n}" for n in range(MAX_REPORTED)]
    d.drop("one_more")
    assert d.reported() == [f"f{n}" for n in range(MAX_REPORTED - 1)] + ["..."]


def test_a_list_that_is_not_one_is_dropped():
    d = Dropped()
    assert d.listed(None, "tools") == [] and d.reported() == []
    assert d.listed([1], "tools") == [1]
    assert d.listed({"a": 1}, "tools") == [] and d.reported() == ["tools"]
