"""Child processes the tests and the benchmark start (gunicorn, nginx, fakes)."""
from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a child we started (by its own pid), escalating to SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
