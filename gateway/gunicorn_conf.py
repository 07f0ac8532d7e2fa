"""gunicorn settings for codex-gateway (``deploy/gunicorn.conf.py`` imports this).

Values come from the gateway's own configuration so one file (or the
``CODEX_GATEWAY_*`` environment) drives both. Why each value:
"""
from __future__ import annotations

from gateway import config as _gw_config
from gateway.auth import ClientKeys as _ClientKeys
from gateway.usage import multiproc as _multiproc

_cfg = _gw_config.load()

bind = [_cfg.server.bind]
# gthread (one thread per open stream, no monkey-patching, works with requests), with
# JSON instead of gunicorn's HTML pages for requests gunicorn itself refuses.
worker_class = "gateway.workers.ThreadWorker"
workers = _cfg.server.workers
# Each open SSE stream holds a thread for its whole life: size for concurrent streams.
threads = _cfg.server.threads
# Keep-alive slots are worker_connections - threads; leave room above the threads.
worker_connections = _cfg.server.threads + 256
# For gthread the timeout is only a heartbeat (the main loop notifies every second),
# so long streams are safe; a worker stuck for 60 s is really stuck.
timeout = 60
# On reload (HUP) or stop, running streams may finish: long reasoning turns take minutes.
# systemd's TimeoutStopSec must be larger (deploy/systemd sets 930 s).
graceful_timeout = _cfg.server.graceful_timeout
# nginx keeps idle upstream connections for 60 s; stay open longer so nginx never
# reuses a socket gunicorn has just closed.
keepalive = 75
# Headers with "_" (session_id) are dropped, as gunicorn does by default: they collide
# with hyphenated names in WSGI. The shipped nginx config re-sends them hyphenated.
header_map = "drop"
# Only the local nginx may set X-Forwarded-*.
forwarded_allow_ips = "127.0.0.1,::1"
accesslog = "-"
# The access log never holds a key sent in a URL (?key=, ?api_key=): docs/security.md.
logger_class = "gateway.security.access_log.RedactingLogger"
errorlog = "-"
loglevel = _cfg.server.log_level
proc_name = "codex-gateway"
# gunicorn >= 24 opens a control socket under $HOME by default; the service has no
# writable home (systemd ProtectHome) and needs no runtime control beyond signals.
control_socket_disable = True


def on_starting(server):
    """Refuse a public bind without client keys (secure by default); start the
    metrics from zero (files of a previous run would add to the new totals).

    Prometheus metrics are summed over workers through PROMETHEUS_MULTIPROC_DIR.
    prometheus_client reads it when first imported, so it is set here, in the
    arbiter before any worker exists (and not when this file is imported: a
    HUP re-reads the file, and the directory must outlive it)."""
    _multiproc.wipe(_multiproc.ensure_dir())
    binds = server.cfg.bind or []
    public = [b for b in binds if not _gw_config.is_loopback_bind(b)]
    if public and not _ClientKeys(_cfg.auth.client_keys, _cfg.keys_file).enabled:
        raise SystemExit(
            f"codex-gateway: refusing to bind {', '.join(public)} without client API keys.\n"
            "Create one with `codex-gateway keys create` (or set CODEX_GATEWAY_AUTH_CLIENT_KEYS), "
            "or bind 127.0.0.1 only.")


def child_exit(server, worker):
    """A worker is gone: its open-stream and WebSocket gauges go with it."""
    _multiproc.mark_dead(worker.pid)


def on_exit(server):
    _multiproc.remove_if_owned()


def post_fork(server, worker):
    """Workers import the gateway afresh: the arbiter imported parts of it to read
    this file, and a reload after an upgrade must not mix old and new code."""
    import sys

    for name in [m for m in sys.modules if m == "gateway" or m.startswith("gateway.")]:
        del sys.modules[name]


def post_worker_init(worker):
    """On a graceful stop (reload, stop), open WebSockets let their running response
    finish, then close with 1001: they watch this worker's ``alive`` flag."""
    from gateway.clientws import connection

    connection.watch_worker(worker)
