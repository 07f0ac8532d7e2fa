"""gateway.headers
~~~~~~~~~~~~~~~~~~
Client-controlled text made safe for a response header, and bounded.

A JSON field name can hold a line break, a NUL or any Unicode character, and
a body can hold thousands of them. Copied as-is into a header such as
``x-gateway-dropped-params`` they make gunicorn refuse the response (a 500),
or make the header too large for the client's HTTP library to read. So every
value is percent-encoded down to visible ASCII (reversible, and the usual way
to carry arbitrary bytes in a header) and cut to a size any client accepts.

Pure: no web framework, no I/O.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

ELLIPSIS = "..."  # ASCII: "…" is not Latin-1, and gunicorn refuses it in a header
NAME_LIMIT = 64  # per list item: longer names are cut (they are never real parameters)
_MIN_LIMIT = 32  # room for at least one item and the "+N more" marker

# Visible ASCII (RFC 9110 field-vchar without obs-text). '%' is escaped so the
# encoding stays reversible; in a list ',' separates and '""' is the empty name.
_VISIBLE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"%"}
_LIST_SAFE = _VISIBLE - {",", '"'}
_VALUE_SAFE = _VISIBLE | {" "}
_LIST_PLAIN = re.compile("[" + re.escape("".join(sorted(_LIST_SAFE))) + "]+")  # the fast path


def _pieces(text: str, safe: frozenset[str]) -> list[str]:
    """Each character as itself or as its %XX-encoded UTF-8 bytes (one piece per
    character, so a cut never splits an escape)."""
    out = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            # surrogatepass: the standard json module accepts lone surrogates ("\\ud800").
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
    return out


def _cut(pieces: list[str], limit: int) -> str:
    """Join *pieces*, or as many as fit before "..." within *limit*."""
    whole = "".join(pieces)
    if len(whole) <= limit:
        return whole
    kept, size = [], len(ELLIPSIS)
    for piece in pieces:
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + ELLIPSIS


def safe_value(value: object, limit: int = 256) -> str:
    """One header value: visible ASCII and inner spaces kept, everything else
    (CR, LF, NUL, controls, non-ASCII, '%') percent-encoded; at most *limit*
    characters, ending in "..." when cut."""
    if limit < len(ELLIPSIS) + 3:
        raise ValueError(f"limit must be at least {len(ELLIPSIS) + 3}")
    # Every character is at least one output character: the rest cannot show.
    pieces = _pieces(str(value)[:limit + 1], _VALUE_SAFE)
    # The server strips blanks at either end of a value: encode those instead.
    for i in range(len(pieces)):
        if pieces[i] != " ":
            break
        pieces[i] = "%20"
    for i in range(len(pieces) - 1, -1, -1):
        if pieces[i] not in (" ", "%20"):
            break
        pieces[i] = "%20"
    return _cut(pieces, limit)


def header_list(names: Iterable[object], limit: int = 1024) -> str:
    """A comma-separated list for a response header, e.g. ``x-gateway-dropped-params``.

    Each name is percent-encoded (see :func:`safe_value`; ',' too, so a name
    cannot look like two) and cut at :data:`NAME_LIMIT` characters; repeats are
    listed once, in first-seen order. When the whole would exceed *limit*, as
    many names as fit are kept and the list ends with ``,...+N more``.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT}")
    items: list[str] = []
    seen: set[str] = set()
    for name in names:
        text = str(name)
        if len(text) <= NAME_LIMIT and _LIST_PLAIN.fullmatch(text):
            item = text  # the usual parameter name, at C speed
        else:
            item = _cut(_pieces(text[:NAME_LIMIT + 1], _LIST_SAFE), NAME_LIMIT) or '""'
        if item not in seen:
            seen.add(item)
            items.append(item)
    whole = ",".join(items)
    if len(whole) <= limit:
        return whole
    kept: list[str] = []
    size = 0
    for i, item in enumerate(items):
        marker = f"{ELLIPSIS}+{len(items) - i - 1} more"
        extra = len(item) + (1 if kept else 0)
        # Keep this item only if the marker for the rest still fits after it.
        if size + extra + 1 + len(marker) > limit:
            break
        kept.append(item)
        size += extra
    rest = len(items) - len(kept)
    return ",".join([*kept, f"{ELLIPSIS}+{rest} more"])
