"""Session hooks and fixtures for every tier: the log directory, the secret audit,
CI's no-skip rule, error-body recording, and real gunicorn processes."""
from __future__ import annotations

import os

import pytest
import requests
from hypothesis import settings

from tests.support import ERROR_BODIES, Gateway, audit_secrets, audit_tracebacks, reset_logs


# Property tests check what a function answers, never how fast: a per-example deadline
# is a wall-clock assertion, and on a loaded machine (CI, two test processes) it fails
# tests that are right.
settings.register_profile("gateway", deadline=None)
settings.load_profile("gateway")


def _xdist_worker(session) -> bool:
    """True in a pytest-xdist worker (``make test-fast`` runs two): the controller resets the
    logs before the workers start and audits them after they all finished."""
    return hasattr(session.config, "workerinput")


def pytest_sessionstart(session):
    """Start every run with empty logs, so the audit reads only this run's output."""
    if not _xdist_worker(session):
        reset_logs()


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
    """After whatever ran, in any order or selection: no registered secret may appear
    in a log or an error body. In CI a skipped test is a failure too: a missing part
    must never hide behind a skip."""
    if _xdist_worker(session):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    leaks = audit_secrets()
    if leaks:
        if reporter:
            reporter.write_line(f"SECRET AUDIT FAILED: {len(leaks)} leak(s): {leaks[:5]}")
        session.exitstatus = 1
    broken = audit_tracebacks()
    if broken:
        if reporter:
            reporter.write_line(f"TRACEBACK AUDIT FAILED: a traceback in {broken[:5]}")
        session.exitstatus = 1
    if os.environ.get("CI") != "true":
        return
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skips count as failures in CI.")
        session.exitstatus = 1
