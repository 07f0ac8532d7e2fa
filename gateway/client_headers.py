"""gateway.client_headers
~~~~~~~~~~~~~~~~~~~~~~~~~~
A request's client headers, read once.

Continuity, the upstream profile's forwarding and the client identity each
read the client's headers; the WSGI view of them (werkzeug's
``EnvironHeaders``) rebuilds every name from the whole environ each time they
are listed and reformats the name on every lookup (~25 µs per request for the
profile alone). :class:`ClientHeaders` reads them once per call into a dict
keyed by lower-case name; lookups are case-insensitive as before, and
:meth:`ClientHeaders.items` gives the names as the client spelled them.

Pure: no web framework.
"""
from __future__ import annotations


class ClientHeaders:
    """The headers of one request: ``get``/``[]``/``in`` by any case of a name
    (the first value of a repeated one), ``items()`` in the client's order."""

    __slots__ = ("_pairs", "_index")

    def __init__(self, headers=()):
        pairs = list(headers.items()) if hasattr(headers, "items") else list(headers)
        index: dict[str, str] = {}
        for name, value in pairs:
            index.setdefault(name.lower(), value)
        self._pairs = pairs
        self._index = index

    @classmethod
    def of(cls, headers) -> "ClientHeaders":
        """*headers* (any mapping or pairs) read once; itself when it already is."""
        if isinstance(headers, cls):
            return headers
        return cls(() if headers is None else headers)  # (not `or`: len() walks an environ)

    def get(self, name: str, default=None):
        return self._index.get(name.lower(), default)

    def __getitem__(self, name: str):
        return self._index[name.lower()]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self):
        return (name for name, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:  # names only: values may hold a key
        return f"ClientHeaders({[name for name, _ in self._pairs]!r})"
