"""gateway.headers (placeholder: replaced by the hardening branch)."""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^\x21-\x7e]")


def safe_value(value: str, limit: int = 256) -> str:
    return _UNSAFE.sub("_", value)[:limit]


def header_list(names, limit: int = 1024) -> str:
    out, size = [], 0
    names = list(names)
    for i, name in enumerate(names):
        item = safe_value(str(name), 64).replace(",", "_")
        if size + len(item) + 1 > limit:
            return ",".join(out) + f",...+{len(names) - i} more"
        out.append(item)
        size += len(item) + 1
    return ",".join(out)
