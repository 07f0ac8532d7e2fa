"""The configuration reference (docs/reference/configuration.md) is generated from the config
dataclasses and is current; every setting has a description; every setting the docs name
exists."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gateway import config, configdoc

ROOT = Path(__file__).resolve().parents[2]
FIELDS = [(name, f) for name, cls in configdoc.sections() for f in dataclasses.fields(cls)]


def test_the_checked_in_reference_is_current():
    assert configdoc.PAGE.read_text() == configdoc.render(), \
        "docs/reference/configuration.md is stale: run python -m gateway.configdoc"
    assert configdoc.main(["--check"]) == 0


@pytest.mark.parametrize("section, f", FIELDS, ids=[f"{s}.{f.name}" for s, f in FIELDS])
def test_every_setting_is_described_and_listed(section, f):
    assert f.metadata.get("doc", "").strip(), f"{section}.{f.name} needs setting(..., doc)"
    row = f"| `{f.name}` |"
    page = configdoc.render()
    part = page[page.index(f"## `[{section}]`"):]
    assert row in part and f"`{configdoc.env_name(section, f.name)}`" in part


def test_every_section_and_table_is_described():
    for _, cls in configdoc.sections():
        assert (cls.__doc__ or "").strip() and not cls.__doc__.startswith(cls.__name__ + "(")
    for f in configdoc.tables():
        assert f.metadata.get("doc", "").strip()


def test_the_environment_variable_shown_is_the_one_read():
    for section, f in FIELDS:
        value = f.default
        text = ("true" if not value else "false") if isinstance(value, bool) else None
        if text is None:
            continue  # a boolean flips visibly; the naming rule is the same for every type
        cfg = config.load(env={configdoc.env_name(section, f.name): text})
        assert getattr(getattr(cfg, section), f.name) is (not value)


def test_bounds_live_on_the_fields():
    server = {f.name: f for f in dataclasses.fields(config.ServerConfig)}
    assert server["workers"].metadata["min"] == 1
    with pytest.raises(config.ConfigError, match="server.workers: must be at least 1"):
        config.load(env={"CODEX_GATEWAY_SERVER_WORKERS": "0"})
    with pytest.raises(config.ConfigError, match="oauth.callback_port: must be at most 65535"):
        config.load(env={"CODEX_GATEWAY_OAUTH_CALLBACK_PORT": "65536"})
    with pytest.raises(config.ConfigError, match="upstream.codex_transport: must be one of"):
        config.load(env={"CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT": "carrier-pigeon"})


_NAMED = re.compile(r"`(" + "|".join(s for s, _ in configdoc.sections()) + r")\.(?!json`)([a-z_]+)`")


def test_every_setting_the_docs_name_exists():
    known = {(s, f.name) for s, f in FIELDS}
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    unknown = sorted({f"{p.relative_to(ROOT)}: {s}.{k}" for p in pages
                      for s, k in _NAMED.findall(p.read_text()) if (s, k) not in known})
    assert unknown == []
