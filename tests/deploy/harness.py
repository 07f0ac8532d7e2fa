"""tests.deploy.harness
~~~~~~~~~~~~~~~~~~~~~~
The deployment path on 127.0.0.1, for tests/deploy and tests/clients:
client → real nginx (shipped server block) → real gunicorn → fake Codex upstream.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import Gateway
from tests.fakes.codex_upstream import FakeCodexUpstream
from tests.support import CLIENT_KEY, gateway_env

from .nginx import Nginx, find_nginx

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"


def require(path: str | None, what: str) -> str:
    """The tool's path, or: a failure in CI or as root (install.sh must have installed it),
    a skip for a non-root developer whose install.sh could not install it."""
    if path and os.access(path, os.X_OK):
        return path
    message = f"{what} is not installed (tests/clients/install.sh installs it)"
    if IN_CI or os.geteuid() == 0:
        pytest.fail(message, pytrace=False)
    pytest.skip(message + "; not root, so it could not")


def nginx_binary() -> str:
    return require(find_nginx(), "nginx")


def tool(name: str) -> str:
    return require(shutil.which(name), name)


@dataclass
class Stack:
    upstream: FakeCodexUpstream
    gateway: Gateway
    nginx: Nginx

    @property
    def url(self) -> str:
        """Plain HTTP through nginx (the CLI clients use this)."""
        return self.nginx.url

    def stop(self) -> None:
        self.nginx.cleanup()
        self.gateway.stop()


def start_stack(upstream: FakeCodexUpstream, state: Path, name: str, workers: int = 2,
                nginx_overrides: dict | None = None, **gateway_settings) -> Stack:
    """gunicorn (the gateway) and nginx in front of it, for an already running *upstream*."""
    binary = nginx_binary()
    state.mkdir(parents=True, exist_ok=True)
    gateway = Gateway(gateway_env(upstream, state, **gateway_settings), workers=workers,
                      threads=16, name=name).start()
    try:
        nginx = Nginx(gateway.port, overrides=nginx_overrides, binary=binary).start()
    except BaseException:
        gateway.stop()
        raise
    return Stack(upstream, gateway, nginx)


__all__ = ["CLIENT_KEY", "IN_CI", "ROOT", "Stack", "nginx_binary", "require", "start_stack",
           "tool"]
