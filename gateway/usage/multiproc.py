"""gateway.usage.multiproc
~~~~~~~~~~~~~~~~~~~~~~~~~~
The directory ``prometheus_client`` shares between gunicorn workers.

``prometheus_client`` decides at import whether it runs in multiprocess mode,
so the gunicorn config calls :func:`ensure_dir` before anything imports it
(this module imports nothing of it). The directory is private (0700, under
the service's own /tmp) and wiped when the arbiter starts: files left by a
previous run would add old totals to new ones. A HUP re-reads the gunicorn
config in the same arbiter; the variable is then already set, so the same
directory (and the running totals) are kept. A dead worker's live gauges are
removed by :func:`mark_dead` (gunicorn's ``child_exit``); its counters stay,
so totals never go backwards.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_OWNED = "CODEX_GATEWAY_METRICS_DIR_OWNED"  # set when this module made the directory


def ensure_dir(environ=os.environ) -> str:
    """The multiprocess directory, created (0700) if the variable names none."""
    path = environ.get(ENV)
    if path:
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path
    path = tempfile.mkdtemp(prefix="codex-gateway-metrics-")  # 0700
    environ[ENV] = path
    environ[_OWNED] = path
    return path


def wipe(path: str) -> None:
    """Remove prometheus_client's files (``counter_*.db``, ``gauge_*.db``…) at the
    arbiter's start: no totals from a previous run. Only those: the directory may
    be the operator's own."""
    for entry in Path(path).glob("*.db"):
        if entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
            except FileNotFoundError:
                pass


def remove_if_owned(environ=os.environ) -> None:
    """At the arbiter's exit: remove the directory if this module created it."""
    path = environ.get(_OWNED)
    if path and environ.get(ENV) == path:
        shutil.rmtree(path, ignore_errors=True)


def mark_dead(pid: int) -> None:
    """A worker exited: drop its live gauges (open streams and WebSockets)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
