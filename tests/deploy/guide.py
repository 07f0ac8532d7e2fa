"""tests.deploy.guide
~~~~~~~~~~~~~~~~~~~~
The deploy guide (docs/deploy/vps.md) as data: its shell commands, in order, and its files.

A ``sh`` block holds commands, one a line (``#`` lines are comments). A block
preceded by ``<!-- file: PATH -->`` is the content of that file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "vps.md"
START, END = "<!-- deploy-guide:start -->", "<!-- deploy-guide:end -->"


def guide_text() -> str:
    """The guide: docs/deploy/vps.md between its deploy-guide markers."""
    text = GUIDE.read_text()
    return text[text.index(START) + len(START):text.index(END)]

_BLOCK = re.compile(r"(?:<!-- file: (?P<file>[^>]+?) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```",
                    re.S)


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    file: str | None


def blocks(text: str | None = None) -> list[Block]:
    text = guide_text() if text is None else text
    return [Block(m["lang"], m["body"], m["file"]) for m in _BLOCK.finditer(text)]


def commands(text: str | None = None) -> list[str]:
    """Every command of every ``sh`` block, in the guide's order."""
    out = []
    for block in blocks(text):
        if block.lang != "sh":
            continue
        for line in block.body.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def file(path: str, text: str | None = None) -> str:
    """The content the guide gives for file *path*."""
    [block] = [b for b in blocks(text) if b.file == path]
    return block.body
