"""bench.procs
~~~~~~~~~~~~~~
The processes a bench run starts (nginx, gunicorn, the fake upstream) and what
it reads about them from ``/proc``: CPU seconds, RSS, open fds, threads.

Everything binds 127.0.0.1 on a free port, lives in one temporary directory and
is stopped by the ``with`` block that started it, so a run leaves nothing behind.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.process import stop_process

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CLIENT_KEY = "bench-client-key-0123456789abcdef"
ACCOUNT_IDS = ("acct-bench-a", "acct-bench-b")


def publish(name: str, text: str, results: dict) -> None:
    """Print a bench's table; keep it and its raw numbers as ``bench/out/<name>.md``
    and ``.json``."""
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.md").write_text(text)
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# -- /proc ---------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """Direct children of *pid* (gunicorn or nginx workers of a master)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(set(out))


@dataclass
class ProcSample:
    cpu: float = 0.0      # utime + stime, seconds (all threads)
    rss: int = 0          # bytes
    fds: int = 0
    threads: int = 0

    def __add__(self, other: "ProcSample") -> "ProcSample":
        return ProcSample(self.cpu + other.cpu, self.rss + other.rss,
                          self.fds + other.fds, self.threads + other.threads)


def sample(pid: int) -> ProcSample:
    """CPU from /proc/<pid>/stat (utime+stime), RSS from statm, fds, threads."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        threads = int(fields[17])
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        return ProcSample()
    return ProcSample(cpu, rss, fds, threads)


def sample_all(pids) -> ProcSample:
    total = ProcSample()
    for pid in pids:
        total = total + sample(pid)
    return total


# -- nginx ---------------------------------------------------------------------

NGINX_COMMON = """
{user}worker_processes {workers};
daemon off;
master_process on;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/{name}-body;
    proxy_temp_path {dir}/{name}-proxy;
    fastcgi_temp_path {dir}/{name}-fcgi;
    uwsgi_temp_path {dir}/{name}-uwsgi;
    scgi_temp_path {dir}/{name}-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    sendfile on;
    tcp_nodelay on;
{body}
}}
"""

# The upstream: the fake's SSE answers captured once, served as static files for
# POST (405 -> GET internal redirect), chosen by the forwarded x-codex-bench header.
# "hold" answers are rate-limited so a stream stays open for a few seconds.
UPSTREAM_BODY = """
    map $http_x_codex_bench $bench_file {{
        default small.sse; small small.sse; long long.sse; hold hold.sse;
    }}
    map $http_x_codex_bench $bench_rate {{ default 0; hold {hold_rate}; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096 reuseport;
        root {bodies};
        default_type text/event-stream;
        client_max_body_size 64m;
        location / {{
            limit_rate $bench_rate;
{headers}
            try_files /$bench_file =404;
            error_page 405 =200 $uri;
        }}
    }}
"""

# nginx as a pure pass-through proxy in front of each upstream (SSE settings).
PROXY_SERVER = """
    upstream bench_{name} {{ server 127.0.0.1:{upstream}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096 reuseport;
        client_max_body_size 64m;
        location / {{
            proxy_pass http://bench_{name};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 600s;
        }}
    }}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


class Nginx:
    """One nginx master with its workers; *body* is the ``http`` block's content."""

    def __init__(self, workdir: Path, name: str, body: str, ports: dict, workers: int = 2):
        self.dir = workdir
        self.name = name
        self.ports = ports
        self.port = next(iter(ports.values()))
        user = "user root;\n" if os.geteuid() == 0 else ""
        text = NGINX_COMMON.format(user=user, workers=workers, dir=workdir, name=name, body=body)
        self.conf = workdir / f"{name}.conf"
        self.conf.write_text(text)
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.urls = {k: f"http://127.0.0.1:{v}" for k, v in ports.items()}

    def start(self) -> "Nginx":
        binary = nginx_binary()
        if not binary:
            raise RuntimeError("nginx is not installed (make tools installs it)")
        log = open(self.dir / f"{self.name}-stdout.log", "ab")
        self.proc = subprocess.Popen([binary, "-p", str(self.dir), "-c", str(self.conf)],
                                     stdout=log, stderr=subprocess.STDOUT)
        for port in self.ports.values():
            wait_port(port, self.proc)
        return self

    def workers(self) -> list[int]:
        return children(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGQUIT)

    def __enter__(self):
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        self.stop()


def upstream_nginx(workdir: Path, bodies: Path, headers: dict, hold_rate: str = "0",
                   workers: int = 2) -> Nginx:
    """The static upstream: captured answers served for POST."""
    port = free_port()
    lines = "\n".join(f'            add_header {k} "{v}" always;' for k, v in headers.items())
    body = UPSTREAM_BODY.format(port=port, bodies=bodies, headers=lines, hold_rate=hold_rate)
    return Nginx(workdir, "upstream", body, {"static": port}, workers)


def proxy_nginx(workdir: Path, upstreams: dict, workers: int = 2) -> Nginx:
    """nginx-only path: one pass-through server per upstream (name -> port)."""
    ports = {name: free_port() for name in upstreams}
    body = "".join(PROXY_SERVER.format(name=name, upstream=upstreams[name], port=ports[name])
                   for name in upstreams)
    return Nginx(workdir, "proxy", body, ports, workers)


# -- the gateway ---------------------------------------------------------------

def write_accounts(state_dir: Path, ids=ACCOUNT_IDS[:1]) -> Path:
    """A Codex CLI auth.json for the first id (the accounts.auth_file shortcut) and
    store files for the others; tokens are unsigned JWTs valid for a day."""
    from gateway.state.files import atomic_write_json
    from gateway.state.records import codex_record
    from tests.fakes.jwt import codex_claims, make_jwt

    state_dir.mkdir(parents=True, exist_ok=True)
    auth = state_dir / "auth.json"
    for i, account_id in enumerate(ids):
        token = make_jwt(codex_claims(account_id, exp=int(time.time()) + 86400))
        toks = {"id_token": token, "access_token": token, "refresh_token": "rt-" + account_id,
                "account_id": account_id}
        if i == 0:
            auth.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": toks,
                                        "last_refresh": "2026-11-25T00:00:00Z"}))
        else:
            (state_dir / "state" / "accounts").mkdir(parents=True, exist_ok=True, mode=0o700)
            rec = codex_record(toks)
            atomic_write_json(state_dir / "state" / "accounts" / f"{rec['id']}.json", rec)
    return auth


class Gateway:
    """gunicorn with the shipped config (deploy/gunicorn.conf.py), configured by
    ``CODEX_GATEWAY_*`` variables only; ``worker_class`` may swap in gevent."""

    def __init__(self, workdir: Path, upstream_url: str, *, workers: int = 2,
                 threads: int | None = None, keepalive: float | None = None,
                 worker_class: str | None = None, root: Path = ROOT, name: str = "gateway",
                 extra_env: dict | None = None, accounts=ACCOUNT_IDS[:1]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.worker_class = worker_class
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        auth = write_accounts(self.dir, accounts)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_GATEWAY_")}
        env.update({
            "CODEX_GATEWAY_SERVER_BIND": f"127.0.0.1:{self.port}",
            "CODEX_GATEWAY_SERVER_WORKERS": str(workers),
            "CODEX_GATEWAY_SERVER_GRACEFUL_TIMEOUT": "3",
            "CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": upstream_url + "/backend-api/codex",
            "CODEX_GATEWAY_UPSTREAM_OPENAI_BASE_URL": upstream_url + "/v1",
            "CODEX_GATEWAY_ACCOUNTS_AUTH_FILE": str(auth),
            "CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(self.dir / "state"),
            "CODEX_GATEWAY_AUTH_CLIENT_KEYS": CLIENT_KEY,
            "PYTHONPATH": str(root),
        })
        if threads is not None:
            env["CODEX_GATEWAY_SERVER_THREADS"] = str(threads)
        if keepalive is not None:
            env["CODEX_GATEWAY_SERVER_KEEPALIVE_SECONDS"] = str(keepalive)
        env.update(extra_env or {})
        self.env = env
        self.log_path = self.dir / "gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Gateway":
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(self.root / "deploy/gunicorn.conf.py")]
        if self.worker_class:
            cmd += ["-k", self.worker_class]
        cmd.append("gateway.wsgi:app")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=0.5)
                if len(self.workers()) >= int(self.env["CODEX_GATEWAY_SERVER_WORKERS"]):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start in time")

    def workers(self) -> list[int]:
        return children(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, timeout=15)

    def __enter__(self):
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        self.stop()


class _PythonServer:
    """``python -m <module> --port N …`` in a child process, ready when it listens."""

    def __init__(self, module: str, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(self.port),
                                      *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class FakeUpstream(_PythonServer):
    """``python -m tests.fakes.codex_upstream`` in a child process (its own CLI and
    ``/_fake/`` control API only, so the bench does not depend on its internals)."""

    def __init__(self, *args: str):
        super().__init__("tests.fakes.codex_upstream", *args)

    def control(self, method: str, path: str, payload=None):
        resp = requests.request(method, self.url + path, json=payload, timeout=30)
        resp.raise_for_status()
        return resp.json()


def client_headers(**extra) -> dict:
    h = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    h.update(extra)
    return h


def upstream_headers(account_id: str = ACCOUNT_IDS[0]) -> dict:
    """Headers the fake upstream accepts (what the gateway would send)."""
    from tests.fakes.jwt import codex_claims, make_jwt
    token = make_jwt(codex_claims(account_id, exp=int(time.time()) + 86400))
    return {"Authorization": f"Bearer {token}", "chatgpt-account-id": account_id,
            "Content-Type": "application/json", "Accept": "text/event-stream"}


class PacedUpstream(_PythonServer):
    """``python -m bench.paced``: one event per write, a pause between events."""

    def __init__(self, bodies: Path, headers: dict):
        args = ["--bodies", str(bodies)]
        for k, v in headers.items():
            args += ["--header", f"{k}: {v}"]
        super().__init__("bench.paced", *args)
