"""Every relative link and ``#anchor`` in README.md and docs/**/*.md resolves, and no link
leaves the repository. Anchors are GitHub's heading slugs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def prose(text: str) -> str:
    """*text* without fenced code blocks and inline code (links there are not links)."""
    return _CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to
    hyphens (letters, digits, ``-`` and ``_`` are kept)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor *path* defines: heading slugs (repeats get ``-1``, ``-2`` …) and
    explicit ``<a name=…>``."""
    text = _FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    out = set(_HTML_ANCHOR.findall(text))
    for _, title in _HEADING.findall(text):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    return _LINK.findall(prose(path.read_text()))


def broken(path: Path, root: Path = ROOT) -> list[str]:
    """The links of *path* that do not resolve, each with the reason."""
    bad = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, file:
            continue
        where, _, anchor = target.partition("#")
        dest = (path.parent / where).resolve() if where else path
        if not dest.is_relative_to(root):
            bad.append(f"{target}: leaves the repository")
        elif not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            bad.append(f"{target}: no such anchor in {dest.relative_to(root)}")
    return bad


def test_slugs_follow_github():
    assert slug("Uncertain facts (configuration, with these defaults)") == \
        "uncertain-facts-configuration-with-these-defaults"
    assert slug("`POST /v1/messages/count_tokens`: an estimate") == \
        "post-v1messagescount_tokens-an-estimate"
    assert slug("6. nginx and TLS") == "6-nginx-and-tls"
    assert slug("WebSocket (Codex CLI)") == "websocket-codex-cli"


def test_the_checker_sees_a_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Same\n\n## Same\n")
    page = tmp_path / "docs" / "x.md"
    page.write_text("# Top\n[a](#top) [b](#nope) [c](missing.md) [d](../../etc/passwd) "
                    "[e](other.md#same-1) [f](other.md#same-2) `[g](#code)`\n"
                    "```\n[h](#fenced)\n```\n[i](https://example.com/#x)\n")
    assert broken(page, tmp_path) == [
        "#nope: no such anchor in docs/x.md", "missing.md: no such file",
        "../../etc/passwd: leaves the repository",
        "other.md#same-2: no such anchor in docs/other.md"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_resolve(page):
    assert broken(page) == []


def test_every_docs_page_is_reachable_from_the_readme():
    """No page is an orphan: following relative links from README.md reaches each one."""
    seen, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in seen or not page.exists() or page.suffix != ".md":
            continue
        seen.add(page)
        for target in links(page):
            where = target.partition("#")[0]
            if where and not re.match(r"[a-z][a-z0-9+.-]*:", where, re.I):
                todo.append((page.parent / where).resolve())
    assert sorted(str(p.relative_to(ROOT)) for p in set(PAGES) - seen) == []
