"""gateway.usage
~~~~~~~~~~~~~~~~
What the gateway did for its users, made visible: one usage row per finished
request (``records``), stored off the hot path (``writer`` → ``store``), read
back by ``codex-gateway usage`` (``report``), the accounts' quota windows
(``quota``), Prometheus metrics (``metrics``) and the admin status page
(``status_page``).

Nothing here is imported by the request path except the sinks the app
registers; the pure modules import no web framework.
"""
