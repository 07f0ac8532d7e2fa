"""Integration fixtures: the fake upstream in-process, gunicorn in its own processes."""
from __future__ import annotations

import pytest

from tests.fakes.codex_upstream import FakeCodexUpstream


@pytest.fixture
def upstream():
    with FakeCodexUpstream() as srv:
        yield srv
