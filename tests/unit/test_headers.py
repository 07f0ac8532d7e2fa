"""Client-controlled text in response headers: visible ASCII, reversible, bounded."""
from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.headers import NAME_LIMIT, header_list, safe_value

# What gunicorn sends without complaint, and what every client library reads.
HEADER_SAFE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?|")


@pytest.mark.parametrize("names,expected", [
    (["temperature", "top_p"], "temperature,top_p"),
    ([], ""),
    (["a\r\nSet-Cookie: x=1"], "a%0D%0ASet-Cookie:%20x=1"),
    (["caf\u00e9"], "caf%C3%A9"),
    (["\u65e5\u672c"], "%E6%97%A5%E6%9C%AC"),
    (["a,b", "c"], "a%2Cb,c"),  # a comma in a name cannot make it two names
    (["100%"], "100%25"),
    (["nul\x00", "tab\t", "del\x7f"], "nul%00,tab%09,del%7F"),
    (["", "x"], '"",x'),
    (["dup", "other", "dup"], "dup,other"),
    (["\ud800"], "%ED%A0%80"),  # a lone surrogate (the json module lets one through)
    ([5, None], "5,None"),
])
def test_header_list(names, expected):
    assert header_list(names) == expected


def test_each_name_is_cut():
    value = header_list(["x" * 500, "short"])
    first, second = value.split(",")
    assert first == "x" * (NAME_LIMIT - 3) + "..." and second == "short"


def test_a_cut_never_splits_an_escape():
    [item] = header_list(["\u00e9" * 40]).split(",")
    assert item.endswith("...") and len(item) <= NAME_LIMIT
    assert re.fullmatch(r"(%C3%A9)+\.\.\.", item)


def test_thousands_of_names_are_bounded_and_counted():
    names = [f"field_{i}" for i in range(5000)]
    value = header_list(names, limit=1024)
    assert len(value) <= 1024
    kept, marker = value.rsplit(",", 1)
    kept = kept.split(",")
    assert kept == names[:len(kept)]
    assert marker == f"...+{5000 - len(kept)} more"


@pytest.mark.parametrize("limit", [32, 33, 40, 64, 100, 1024])
def test_the_limit_holds_at_every_size(limit):
    for count in (1, 9, 10, 11, 99, 100, 101, 2000):
        value = header_list([f"n{i}" * 7 for i in range(count)], limit=limit)
        assert len(value) <= limit, (limit, count, value)


def test_a_limit_too_small_for_the_marker_is_refused():
    with pytest.raises(ValueError):
        header_list(["a"], limit=8)
    with pytest.raises(ValueError):
        safe_value("a", limit=2)


@pytest.mark.parametrize("value,limit,expected", [
    ("gpt-5-codex", 256, "gpt-5-codex"),
    ("a b", 256, "a b"),
    (" padded ", 256, "%20padded%20"),  # a server would strip the blanks
    ("   ", 256, "%20%20%20"),
    ("x\r\ny", 256, "x%0D%0Ay"),
    ("a,b", 256, "a,b"),  # one value: commas are fine
    ("50%", 256, "50%25"),
    ("x" * 20, 10, "xxxxxxx..."),
    ("\u00e9\u00e9\u00e9", 10, "%C3%A9..."),
])
def test_safe_value(value, limit, expected):
    assert safe_value(value, limit) == expected


@given(st.lists(st.text(), max_size=300), st.integers(min_value=32, max_value=4096))
def test_header_list_is_always_header_safe_and_bounded(names, limit):
    value = header_list(names, limit=limit)
    assert len(value) <= limit
    assert HEADER_SAFE.fullmatch(value), value


@given(st.lists(st.text(max_size=5), max_size=20, unique=True))  # 5 chars: never cut
def test_an_uncut_list_decodes_back_to_the_names(names):
    value = header_list(names, limit=4096)
    decoded = [] if value == "" else \
        ["" if item == '""' else unquote(item, errors="surrogatepass") for item in value.split(",")]
    expected = []
    for name in names:
        if name not in expected:
            expected.append(name)
    assert decoded == expected


@given(st.text(), st.integers(min_value=6, max_value=512))
def test_safe_value_is_always_header_safe_and_bounded(value, limit):
    out = safe_value(value, limit)
    assert len(out) <= limit
    assert HEADER_SAFE.fullmatch(out), out


@given(st.text(max_size=60))
def test_an_uncut_value_decodes_back(value):
    assert unquote(safe_value(value, 4096), errors="surrogatepass") == value


def test_the_empty_name_and_a_quoted_name_differ():
    assert header_list([""]) == '""' and header_list(['""']) == "%22%22"


def test_huge_input_costs_little():
    """A 32 MiB body can hold 100k field names, or one name of megabytes."""
    start = time.process_time()
    header_list([f"field_{i}\n" for i in range(100_000)] + ["\u00e9" * 5_000_000])
    safe_value("\r" * 5_000_000)
    assert time.process_time() - start < 2.0
