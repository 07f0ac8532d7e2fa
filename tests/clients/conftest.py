"""Fixtures for the real-client tests: fake upstream, gunicorn and nginx per module."""
from __future__ import annotations

import pytest

from tests.support import Gateway
from tests.deploy.harness import start_stack
from tests.fakes.codex_upstream import FakeCodexUpstream
from tests.support import gateway_env

from .clients import ProxyTrap


@pytest.fixture(scope="module")
def upstream():
    with FakeCodexUpstream() as srv:
        yield srv


@pytest.fixture(scope="module")
def stack(upstream, tmp_path_factory):
    """The shipped nginx config in front of a real gunicorn (2 workers, defaults)."""
    s = start_stack(upstream, tmp_path_factory.mktemp("stack"), "clients")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    """gunicorn alone (2 workers, defaults), no nginx in front."""
    gw = Gateway(gateway_env(upstream, tmp_path_factory.mktemp("gateway")), workers=2,
                 name="clients-direct").start()
    yield gw
    gw.stop()


@pytest.fixture
def fresh(upstream):
    """No recorded requests, no cache, no faults, no delays."""
    upstream.reset()
    upstream.configure(event_delay=0.0, silence=0.0, reply=None, schema_reply=None, fast=False)
    return upstream


@pytest.fixture
def trap():
    """A proxy that lets nothing through (every proxy variable of a client points at it)."""
    t = ProxyTrap()
    yield t
    t.close()
