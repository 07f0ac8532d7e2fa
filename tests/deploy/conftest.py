"""Fixtures for the deployment tests: one fake upstream, gunicorn and nginx per module."""
from __future__ import annotations

import pytest

from tests.fakes.codex_upstream import FakeCodexUpstream

from .harness import start_stack


@pytest.fixture(scope="module")
def upstream():
    with FakeCodexUpstream() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh_upstream(request):
    """Each test starts with no recorded requests, no faults and no delays."""
    if "upstream" in request.fixturenames:
        srv = request.getfixturevalue("upstream")
        srv.reset()
        srv.configure(event_delay=0.0, silence=0.0, reply=None, fast=False)
    yield


@pytest.fixture(scope="module")
def stack(upstream, tmp_path_factory):
    """The shipped nginx config in front of a real gunicorn with default settings."""
    s = start_stack(upstream, tmp_path_factory.mktemp("stack"), "deploy")
    yield s
    s.stop()
