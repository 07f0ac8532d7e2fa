"""tests.redis_server
~~~~~~~~~~~~~~~~~~~~
A real ``redis-server`` (Debian's package) on a free loopback port, with a
password, in the foreground: no persistence unless a test asks for it
(``persist``: an append-only file in its own directory, so a restart on the
same port keeps the data, as a production Redis would).
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import LOG_DIR, free_port, recv_until, register_secret
from tests.process import stop_process


def find_redis() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
         if os.access(p, os.X_OK)), None)


class RedisServer:
    def __init__(self, binary: str, persist: bool = False, name: str = "redis"):
        self.binary = binary
        self.port = free_port()
        self.password = register_secret("redis-pw-" + secrets.token_hex(12))
        self.dir = Path(tempfile.mkdtemp(prefix="cgw-redis-"))
        self.persist = persist
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--requirepass", self.password, "--dir", str(self.dir), "--save", "",
                "--daemonize", "no", "--protected-mode", "yes"]
        argv += ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else \
            ["--appendonly", "no"]
        return argv

    def start(self) -> "RedisServer":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                    if b"PONG" in recv_until(s, b"PONG", 100):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start in time")

    def stop(self) -> None:
        stop_process(self.proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self):
        import redis
        return redis.Redis.from_url(self.url)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_binary() -> str:
    """redis-server's path, or: a failure in CI or as root (tests/clients/install.sh
    installs it), a skip for a developer who is neither."""
    import pytest

    path = find_redis()
    if path:
        return path
    message = "redis-server is not installed (tests/clients/install.sh installs it)"
    if os.environ.get("CI") == "true" or os.geteuid() == 0:
        pytest.fail(message, pytrace=False)
    pytest.skip(message + "; not root, so it could not")
