"""gateway.models
~~~~~~~~~~~~~~
One model catalog for every dialect: which names the gateway accepts, what
each becomes upstream, and how the catalog is listed to clients. Pure (no
Flask, no I/O beyond reading the built-in table once).

- :mod:`.catalog`    the types: :class:`Model`, :class:`Catalog`
- :mod:`.table`      the ``[models]`` table (and ``builtin.toml``) → a catalog
- :mod:`.resolution` a requested name → upstream model and effort
- :mod:`.listing`    ``GET /v1/models`` and Codex CLI's ``GET /models``

The settings and the resolution rules, for operators: docs/models.md.
"""
from .catalog import CREATED, EFFORTS, KINDS, MODEL_SUFFIX, Catalog, Model
from .listing import codex_entry, codex_etag, codex_list, openai_list, parse_version
from .resolution import Resolution, apply, request_effort, resolve, split_suffix
from .table import CODEX_ENTRIES, CatalogConfigError, load_catalog

__all__ = [
    "CODEX_ENTRIES", "CREATED", "EFFORTS", "KINDS", "MODEL_SUFFIX", "Catalog",
    "CatalogConfigError", "Model", "Resolution", "apply", "codex_entry", "codex_etag",
    "codex_list", "load_catalog", "openai_list", "parse_version", "request_effort",
    "resolve", "split_suffix",
]
