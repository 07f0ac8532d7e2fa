"""In-process tier: ``create_app(...).test_client()`` against the fake upstream.

The executor's branches (fault mapping, failover, every bad input) are tested
here, in one process and in milliseconds; gunicorn tests keep the
cross-process properties.
"""
from __future__ import annotations

import pytest

from tests.fakes.codex_upstream import FakeCodexUpstream
from tests.support import InProcess


@pytest.fixture(autouse=True)
def _close_gateways():
    """Every in-process gateway a test made is closed when it ends."""
    yield
    InProcess.close_opened()


@pytest.fixture
def upstream():
    with FakeCodexUpstream() as srv:
        yield srv


@pytest.fixture
def make_client(upstream, tmp_path):
    """``make_client(accounts=("acct-a",), **settings)`` -> an InProcess gateway."""
    def make(accounts=("acct-a",), **settings) -> InProcess:
        return InProcess(upstream, tmp_path, accounts, settings)
    return make
