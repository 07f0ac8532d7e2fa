"""The README's one-snippet-per-client agrees with the deploy guide, whose commands and files
the deploy and client tiers run (tests/deploy/guide.py): the snippets cannot drift from what is
tested."""
from __future__ import annotations

import ast
import re
import tomllib

from tests.deploy import guide
from tests.support import ROOT

README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_the_codex_cli_provider_is_the_guides():
    [toml] = blocks("toml")
    assert tomllib.loads(toml) == tomllib.loads(guide.file("~/.codex/config.toml"))


def test_the_claude_code_variables_are_the_guides():
    exports = dict(re.findall(r"export (ANTHROPIC_\w+)=(\S+)", "\n".join(guide.commands())))
    [line] = [b for b in blocks("sh") if "claude " in b]
    assert dict(re.findall(r"(ANTHROPIC_\w+)=(\S+)", line)) == exports


def test_the_opencode_settings_are_the_guides():
    opencode = guide.file("~/.config/opencode/opencode.json")
    for value in ('"https://gateway.example.com/v1"', '"{env:CODEX_GATEWAY_KEY}"',
                  "@ai-sdk/openai-compatible"):
        assert value in opencode and value in README


def test_the_sdk_snippets_are_python():
    snippets = blocks("python")
    assert len(snippets) == 2 and any("from openai import" in s for s in snippets)
    for snippet in snippets:
        ast.parse(snippet)


def test_the_gemini_cli_variables_are_its_pages():
    page = (ROOT / "docs" / "clients" / "gemini-cli.md").read_text()
    exports = dict(re.findall(r"export (G\w+)=(\S+)", page))
    [line] = [b for b in blocks("sh") if "gemini " in b]
    assert dict(re.findall(r"(G\w+)=(\S+)", line)) == exports
    assert '"selectedType": "gemini-api-key"' in page and '"selectedType": "gemini-api-key"' in README
