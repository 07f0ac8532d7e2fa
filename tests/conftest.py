"""Shared fixtures: a real gunicorn running the gateway, and CI's no-skip rule."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.process import stop_process

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = Path(os.environ.get("CODEX_GATEWAY_TEST_LOGS", "/tmp/codex-gateway-test-logs"))


SECRETS_FILE = LOG_DIR / "secrets.txt"
ERROR_BODIES = LOG_DIR / "error-bodies.txt"


def register_secret(value: str) -> str:
    """Remember a secret used by a test; the audit test looks for it in every log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(SECRETS_FILE, "a") as fh:
        fh.write(value + "\n")
    return value


def pytest_sessionstart(session):
    """Start every run with empty logs, so the audit reads only this run's output."""
    if LOG_DIR.exists():
        for f in LOG_DIR.iterdir():
            if f.is_file():
                f.unlink()
    LOG_DIR.mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True, scope="session")
def _record_error_bodies():
    """Keep every error body a gateway answers through requests, for the secret audit."""
    original = requests.Session.send

    def send(self, request, **kw):
        resp = original(self, request, **kw)
        if resp.status_code >= 400 and not kw.get("stream"):
            with open(ERROR_BODIES, "ab") as fh:
                fh.write(resp.content + b"\n")
        return resp

    requests.Session.send = send
    yield
    requests.Session.send = original


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """A real gunicorn process serving gateway.wsgi:app on a loopback port."""

    def __init__(self, env: dict, workers: int = 2, threads: int = 16, name: str = "gw",
                 prefix: tuple[str, ...] = ()):
        self.prefix = tuple(prefix)  # e.g. a command that runs gunicorn in a namespace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_GATEWAY_")}
        self.env.update({
            "CODEX_GATEWAY_SERVER_BIND": f"127.0.0.1:{self.port}",
            "CODEX_GATEWAY_SERVER_WORKERS": str(workers),
            "CODEX_GATEWAY_SERVER_THREADS": str(threads),
            "CODEX_GATEWAY_SERVER_GRACEFUL_TIMEOUT": "5",
            "PYTHONUNBUFFERED": "1",
        })
        self.env.update(env)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Gateway":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "gunicorn", "-c",
             str(ROOT / "deploy/gunicorn.conf.py"), "gateway.wsgi:app"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=0.5)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start in time")

    def stop(self) -> None:
        stop_process(self.proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture
def gateway_factory():
    started: list[Gateway] = []

    def make(env: dict, **kw) -> Gateway:
        gw = Gateway(env, **kw).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: a missing part must never hide behind a skip."""
    if os.environ.get("CI") != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skips count as failures in CI.")
        session.exitstatus = 1
