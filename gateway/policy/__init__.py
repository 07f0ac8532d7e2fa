"""gateway.policy
~~~~~~~~~~~~~~~~~
Per-key policy: what one client key may use and how much (docs/sharing.md).

* :mod:`.model`: the policy of a key, as data (allowed models, token budgets,
  requests per minute, concurrency, expiry, revocation, quota visibility);
* :mod:`.admission`: the window arithmetic (days, weeks, the minute, reservations),
  the admission rule and how a refusal is worded; pure;
* :mod:`.store`: where policies live (a JSON file beside the keys file, or Redis);
* :mod:`.counters` / :mod:`.redis_counters`: the shared counters the limits are
  checked against, atomically across workers (SQLite) and instances (Redis);
* :mod:`.gate`: the one check every request passes before its upstream request,
  and the settlement when its answer ends;
* :mod:`.quota`: what a key may see of the serving account's quota;
* :mod:`.report`: a key's usage against its limits (``keys list``, ``/v1/usage``).

No module here imports a web framework.
"""
