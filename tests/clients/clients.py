"""tests.clients.clients
~~~~~~~~~~~~~~~~~~~~~~
The pinned real clients (tests/clients/package.json), run with a home of their own.

The commands and the configuration files are the deploy guide (docs/deploy/vps.md)'s, taken from it at
run time, with one substitution: ``https://gateway.example.com/v1`` → nginx's
plain listener on 127.0.0.1 (the clients are not given the test CA). On top of the
guide's files, settings that keep the clients off the network and quiet, and only
those: Codex ``check_for_update_on_startup = false`` and ``[analytics] enabled =
false``; OpenCode ``OPENCODE_DISABLE_MODELS_FETCH``/``OPENCODE_DISABLE_AUTOUPDATE``,
and ``npm_config_offline=true`` so that OpenCode's background install of its
plugin package into its config directory (not needed to talk to a provider: the
OpenAI-compatible SDK is built in) fails at once instead of reaching the registry;
Claude Code ``DISABLE_AUTOUPDATER``, ``DISABLE_TELEMETRY``, ``DISABLE_ERROR_REPORTING``
and ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` (test_claude_code.py); Gemini CLI's
``privacy.usageStatisticsEnabled``, ``telemetry.enabled`` and ``general.enableAutoUpdate*``
off (test_gemini_cli.py). Every proxy variable points at a :class:`ProxyTrap`.
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy import guide
from tests.deploy.harness import require
from tests.support import CLIENT_KEY

HERE = Path(__file__).resolve().parent
BIN = HERE / "node_modules" / ".bin"
GUIDE_URL = "https://gateway.example.com/v1"
CODEX_TURNS = [c for c in guide.commands() if c.startswith("codex ")]
OPENCODE_TURNS = [c for c in guide.commands() if c.startswith("opencode ")]
CLAUDE_EXPORTS = [c for c in guide.commands() if c.startswith("export ANTHROPIC_")]
CLAUDE_TURNS = [c for c in guide.commands() if c.startswith("claude ")]
HELLO = "Hello from the fake upstream."


# Codex CLI versions pinned side by side (package.json aliases): version → package dir.
CODEX_VERSIONS = {"0.169.0": "codex-0169", "0.171.0": "codex-0171"}


def binary(name: str) -> str:
    return require(str(BIN / name) if (BIN / name).exists() else None,
                   f"{name} (npm, tests/clients/package.json)")


def codex_binary(version: str) -> str:
    """The pinned Codex CLI *version*'s own launcher (both versions ship a `codex` bin)."""
    path = HERE / "node_modules" / CODEX_VERSIONS[version] / "bin" / "codex.js"
    return require(str(path) if path.exists() else None,
                   f"Codex CLI {version} (npm, tests/clients/package.json)")


@dataclass
class Home:
    """A laptop of its own: HOME, XDG directories, a project directory (a git repo)."""

    root: Path

    def __post_init__(self):
        self.home = self.root / "home"
        self.project = self.root / "project"
        for path in (self.home, self.project):
            path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", str(self.project)], check=True)

    def env(self, **extra) -> dict:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home), "LANG": "C.UTF-8",
               "TERM": "dumb", "CODEX_GATEWAY_KEY": CLIENT_KEY,
               "XDG_CONFIG_HOME": str(self.home / ".config"),
               "XDG_DATA_HOME": str(self.home / ".local/share"),
               "XDG_CACHE_HOME": str(self.home / ".cache"),
               "XDG_STATE_HOME": str(self.home / ".local/state"),
               "CODEX_HOME": str(self.home / ".codex")}
        env.update(extra)
        return env

    def write(self, guide_path: str, text: str) -> Path:
        path = self.home / guide_path.removeprefix("~/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def guide_file(path: str, base_url: str) -> str:
    text = guide.file(path)
    assert text.count(GUIDE_URL) == 1, path
    return text.replace(GUIDE_URL, base_url)


def guide_exports(commands: list[str], base_url: str) -> dict:
    """``export NAME=VALUE`` lines of the guide as an environment: the guide's origin
    (``https://gateway.example.com``, no ``/v1``) becomes *base_url*, ``$CODEX_GATEWAY_KEY``
    the test key."""
    env = {}
    for command in commands:
        name, _, value = command.removeprefix("export ").partition("=")
        value = value.replace(GUIDE_URL.removesuffix("/v1"), base_url)
        env[name] = value.replace("$CODEX_GATEWAY_KEY", CLIENT_KEY)
    return env


def run(command: str, exe: str, home: Home, env: dict, timeout: float = 180) -> str:
    """Run a guide command (its first word replaced by the pinned binary); stdout.
    On failure, the assertion shows the client's stderr."""
    return run_full(command, exe, home, env, timeout).stdout


def run_full(command: str, exe: str, home: Home, env: dict,
             timeout: float = 180) -> subprocess.CompletedProcess:
    """``run``, returning the whole process result (stdout and stderr)."""
    argv = [exe, *shlex.split(command)[1:]]
    proc = subprocess.run(argv, cwd=home.project, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"{command!r} exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
                    f"\n--- stderr\n{proc.stderr[-6000:]}", pytrace=False)
    return proc


def envelope(record: dict) -> tuple:
    """The continuity envelope of an upstream request."""
    h = {k.lower(): v for k, v in record["headers"].items()}
    return (h.get("chatgpt-account-id"), record["body"].get("prompt_cache_key"),
            h.get("session_id"), h.get("session-id"))


class ProxyTrap:
    """A proxy that lets nothing through: it records each request line and answers 403."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    line = conn.recv(4096).split(b"\r\n", 1)[0]
                    self.seen.append(line.decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def env(self) -> dict:
        names = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
        out = {n: self.url for n in names} | {n.lower(): self.url for n in names}
        return out | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def close(self):
        self.sock.close()
