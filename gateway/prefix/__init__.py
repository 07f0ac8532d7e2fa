"""gateway.prefix
~~~~~~~~~~~~~~~~
The prompt prefix a conversation's turns share, watched per continuity key.

* :mod:`.fingerprint`: per-item hashes of a normalised Responses request and
  the classification of a turn (``append``, ``new``, or a rewrite at item k of
  n with its cause);
* :mod:`.repair`: restores the exact items the model produced (and the
  first-seen tool definitions) where a client re-sent them changed only in form;
* :mod:`.store`: the small per-key memory both need (SQLite or Redis, bounded, TTL);
* :mod:`.watch`: what the executor calls: load, repair, classify, remember.

See docs/cache-breaks.md.
"""
