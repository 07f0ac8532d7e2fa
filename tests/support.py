"""Helpers shared by the test tiers (conftest files hold fixtures only).

- a real gunicorn (:class:`Gateway`) and the environment that points it at the
  fake upstream (:func:`gateway_env`);
- the in-process gateway (:class:`InProcess`) for the fast tier;
- secrets registered by the tests and the audit that looks for them in every
  log and error body the run produced (:func:`audit_secrets`);
- a small SSE reader of the tests' own (:func:`stream_events`), so the tests do
  not trust the parser they test.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from gateway import config as config_mod
from gateway.app import close as close_app, create_app
from gateway.state.files import FileStore
from gateway.state.records import codex_record
from tests.fakes.jwt import codex_claims, make_jwt
from tests.process import stop_process

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
LOG_DIR = Path(os.environ.get("CODEX_GATEWAY_TEST_LOGS", ROOT / ".test-logs"))
SECRETS_FILE = LOG_DIR / "secrets.txt"
ERROR_BODIES = LOG_DIR / "error-bodies.txt"


_SECRETS: list[str] = []


def register_secret(value: str) -> str:
    """Remember a secret used by a test; the audit looks for it in every log."""
    _SECRETS.append(value)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(SECRETS_FILE, "a") as fh:
        fh.write(value + "\n")
    return value


def reset_logs() -> None:
    """An empty log directory for this run (the secrets registered so far kept)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for f in LOG_DIR.iterdir():
        if f.is_file():
            f.unlink()
    SECRETS_FILE.write_text("".join(s + "\n" for s in _SECRETS))


def audit_secrets(log_dir: Path = LOG_DIR) -> list[str]:
    """Leaks found: a registered secret in a log line or an error body."""
    secrets_file = log_dir / SECRETS_FILE.name
    if not secrets_file.exists():
        return []
    secrets = {s for s in secrets_file.read_text().splitlines() if len(s) >= 8}
    leaks = []
    for f in log_dir.iterdir():
        if f.is_file() and f != secrets_file:
            text = f.read_text(errors="replace")
            leaks += [f"{f.name}: {s[:12]}…" for s in secrets if s in text]
    return leaks


def audit_tracebacks(log_dir: Path = LOG_DIR) -> list[str]:
    """Logs of real processes (gunicorn, nginx, fakes) that hold a Python traceback:
    bad input gets a clear error and a background thread never dies, so none may."""
    return sorted(f.name for f in log_dir.iterdir()
                  if f.is_file() and f.suffix == ".log"
                  and "Traceback (most recent call last)" in f.read_text(errors="replace"))


def self_signed_cert(directory: Path, san: str | None = "IP:127.0.0.1") -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (and its key), made with the openssl CLI;
    *san* None leaves out the subjectAltName, so a verifying client refuses it."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    extra = ["-addext", f"subjectAltName={san}"] if san else []
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", *extra, "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


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

    def logs(self, settle: float = 0.05) -> str:
        """The whole log once it stopped growing for *settle* seconds (at most 2 s):
        a relayed answer's end-of-answer writes, its request line among them, run off
        the relay loop and may land just after the client read the last byte."""
        deadline = time.monotonic() + 2.0
        text = self._read()
        while settle and time.monotonic() < deadline:
            time.sleep(settle)
            again = self._read()
            if len(again) == len(text):
                break
            text = again
        return text

    def _read(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logs_since(self, start: int, needle: str, count: int = 1, timeout: float = 5.0) -> str:
        """The log after offset *start*, once it holds *count* times *needle* (or after
        *timeout*): a relayed answer's end-of-answer writes, its request line among them,
        run off the relay loop and may land just after the client read the last byte."""
        deadline = time.monotonic() + timeout
        while True:
            text = self._read()[start:]
            if text.count(needle) >= count or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


CLIENT_KEY = register_secret("test-client-key-0123456789")
ACCESS_TOKEN_ACCOUNT = "acct-main"
LONG_SYSTEM = ("You are a careful assistant. " * 220).strip()  # > 1024 approx. tokens


def write_auth_file(path, account_id=ACCESS_TOKEN_ACCOUNT, exp_in=3600) -> dict:
    token = register_secret(make_jwt(codex_claims(account_id, exp=int(time.time()) + exp_in)))
    register_secret("rt-" + account_id)
    data = {"OPENAI_API_KEY": None, "tokens": {"id_token": token, "access_token": token,
                                               "refresh_token": "rt-" + account_id,
                                               "account_id": account_id},
            "last_refresh": "2026-11-25T00:00:00Z"}
    path.write_text(json.dumps(data))
    return data


def gateway_env(upstream, tmp_path, **extra) -> dict:
    auth = tmp_path / "auth.json"
    if not auth.exists():
        write_auth_file(auth)
    env = {
        "CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": upstream.base_url + "/backend-api/codex",
        "CODEX_GATEWAY_UPSTREAM_OPENAI_BASE_URL": upstream.base_url + "/v1",
        "CODEX_GATEWAY_ACCOUNTS_AUTH_FILE": str(auth),
        "CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path / "state"),
        "CODEX_GATEWAY_AUTH_CLIENT_KEYS": CLIENT_KEY,
        # The backend's catalog would replace the table a moment after start, racing
        # what a test lists and asks for: the catalog's own tests turn it on.
        "CODEX_GATEWAY_UPSTREAM_CATALOG_REFRESH_SECONDS": "0",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


OPENAI_KEY = register_secret("sk-test-openai-0123456789")


def auth_headers(**extra) -> dict:
    h = {"Authorization": f"Bearer {CLIENT_KEY}"}
    h.update(extra)
    return h


@dataclass
class SSE:
    """One server-sent event as the tests read it."""

    type: str
    data: dict | None
    raw: bytes


def parse_sse(buf: bytes) -> tuple[list[SSE], bytes]:
    """Complete events in *buf*, and the unfinished rest."""
    events = []
    buf = buf.replace(b"\r\n", b"\n")
    while b"\n\n" in buf:
        frame, buf = buf.split(b"\n\n", 1)
        name, data = "", []
        for line in frame.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip().decode())
        if not data:
            continue  # a comment (keep-alive)
        text = "\n".join(data)
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        payload = payload if isinstance(payload, dict) else None
        kind = name or (payload or {}).get("type") or ""
        events.append(SSE(kind, payload, frame + b"\n\n"))
    return events, buf


def stream_events(resp) -> list[tuple[float, SSE]]:
    """Read an SSE response, timestamping each event as it arrives."""
    out, buf = [], b""
    for chunk in resp.iter_content(chunk_size=None):
        now = time.monotonic()
        events, buf = parse_sse(buf + chunk)
        out += [(now, e) for e in events]
    events, _ = parse_sse(buf + b"\n\n")
    out += [(time.monotonic(), e) for e in events]
    return out


def post(gw, path, body, stream=False, headers=None, timeout=30):
    return requests.post(gw.url + path, json=body, headers=headers or auth_headers(),
                         stream=stream, timeout=timeout)


def codex_tokens(account_id: str, exp_in: int = 3600) -> dict:
    token = make_jwt(codex_claims(account_id, exp=int(time.time()) + exp_in))
    return {"access_token": token, "id_token": token, "refresh_token": "rt-" + account_id,
            "account_id": account_id}


class InProcess:
    """The gateway app in this process, its accounts in a state dir of their own.
    Every one made is in ``opened`` until :meth:`close_opened` (a fixture's teardown)."""

    opened: list[InProcess] = []

    def __init__(self, upstream, tmp_path, accounts, settings: dict):
        state = tmp_path / "state"
        store = FileStore(state)
        for account_id in accounts:
            store.save(codex_record(codex_tokens(account_id)))
        env = {
            "CODEX_GATEWAY_UPSTREAM_CODEX_BASE_URL": upstream.base_url + "/backend-api/codex",
            "CODEX_GATEWAY_UPSTREAM_OPENAI_BASE_URL": upstream.base_url + "/v1",
            "CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(state),
            "CODEX_GATEWAY_AUTH_CLIENT_KEYS": CLIENT_KEY,
            "CODEX_GATEWAY_UPSTREAM_READ_TIMEOUT": "5",
            "CODEX_GATEWAY_UPSTREAM_CATALOG_REFRESH_SECONDS": "0",
        }
        env.update({f"CODEX_GATEWAY_{k.upper()}": str(v) for k, v in settings.items()})
        self.config = config_mod.load(env=env)
        self.app = create_app(self.config)
        self.client = self.app.test_client()
        InProcess.opened.append(self)

    def post(self, path: str, body=None, *, headers: dict | None = None, raw: bytes | None = None,
             key: str | None = CLIENT_KEY):
        hdrs = {"Content-Type": "application/json"}
        if key:
            hdrs["Authorization"] = f"Bearer {key}"
        hdrs.update(headers or {})
        if raw is None:
            import json
            raw = json.dumps(body).encode()
        return self.client.post(path, data=raw, headers=hdrs)

    def close(self) -> None:
        """Stop the app's background threads (its usage writer and quota polls would
        otherwise run, and log, through every later test)."""
        close_app(self.app)

    @classmethod
    def close_opened(cls) -> None:
        while cls.opened:
            cls.opened.pop().close()


def results_of(procs, queue, timeout: float = 120.0) -> list:
    """One result per child process from *queue*. Fails as soon as a child exits
    without one (its traceback is on stderr), or after *timeout* (a hang)."""
    import queue as queue_mod

    results, deadline = [], time.monotonic() + timeout
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=0.5))
        except queue_mod.Empty:
            failed = [(p.pid, p.exitcode) for p in procs if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                raise AssertionError(f"{len(results)} of {len(procs)} children answered; "
                                     f"failed (pid, exit code): {failed}") from None
    return results


def in_child(target, *args):
    """What ``target(*args, queue)`` puts on its queue, run in a fresh (spawned)
    process: state other processes see, not this one's memory."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    try:
        (result,) = results_of([proc], queue)
        return result
    finally:
        proc.join(timeout=10)


def credentials_in_threads(env, threads, barrier, queue):
    """In a child process: an account pool of its own, *threads* threads asking for the
    one account's credentials at once (a multiprocessing target: the refresh single
    flight across threads and processes); puts the tokens they got on *queue*."""
    import threading

    from gateway.accounts.pool import AccountPool

    pool = AccountPool(config_mod.load(env=env))
    (account,) = pool.accounts()
    tokens = []

    def call():
        barrier.wait(timeout=120)  # starting 4 interpreters on a busy machine takes a while
        tokens.append(pool.credentials(account).token)

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    queue.put(tokens)


def accounts_env(upstream, tmp_path, account_ids) -> dict:
    """gateway_env with these Codex accounts in the state store instead of an auth file."""
    store = FileStore(tmp_path / "state")
    for account in account_ids:
        token = register_secret(make_jwt(codex_claims(account, exp=int(time.time()) + 3600)))
        store.save(codex_record({"access_token": token, "id_token": token,
                                 "refresh_token": register_secret("rt-" + account)}))
    env = gateway_env(upstream, tmp_path)
    env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"] = ""
    return env


def leave_during_silence(resp, upstream) -> tuple[dict, float]:
    """Read a streaming answer up to ``response.in_progress`` (the fake then stays
    silent), close the connection under it, and wait for the fake to see it go:
    the upstream's record and how long after the close it saw that (5 s at most)."""
    seen, it = b"", resp.iter_content(chunk_size=None)
    while b"response.in_progress" not in seen:
        seen += next(it)
    closed_at = time.time()
    resp.raw._fp.fp.raw._sock.close()
    resp.close()
    rec = upstream.requests[-1]
    while time.time() < closed_at + 5 and not rec.get("client_closed_at"):
        time.sleep(0.02)
        rec = upstream.requests[-1]
    assert rec.get("client_closed_at"), rec
    return rec, rec["client_closed_at"] - closed_at


# -- quota-aware placement -------------------------------------------------------------

def quota_reading(primary: float, reset_in: float = 4 * 3600) -> dict:
    """An account's stored quota windows as the pool keeps them from the x-codex-*
    headers: *primary* used percent of a 5-hour window resetting in *reset_in* s."""
    now = time.time()
    return {"primary": {"used_percent": float(primary), "window_minutes": 300,
                        "reset_at": now + reset_in}, "observed_at": now, "source": "headers"}


def seed_quota(env: dict, upstream, used: dict, reset_in: float = 4 * 3600) -> None:
    """Accounts at *used* percent ``{fake account: percent}``: stored where the
    gateway's workers read them (the state backend *env* names) and reported so by
    the fake upstream's answers from now on."""
    from gateway import state

    health = state.open_state(config_mod.load(env=env)).health
    for account, percent in used.items():
        health.record_rate_limits(f"codex-{account}", quota_reading(percent, reset_in))
        upstream.set_quota(account, primary=percent, reset_in=reset_in)


class Conversation:
    """A Responses client that keeps its history: every turn sends the earlier turns'
    input and output items (reasoning with its encrypted_content included, as Codex
    CLI does), so a turn on another account carries reasoning it cannot read."""

    def __init__(self, name: str, reasoning: bool = True):
        self.name, self.items, self.reasoning = name, [], reasoning
        self.statuses: list[int] = []

    def turn(self, url: str) -> requests.Response:
        n = len(self.statuses)
        self.items.append({"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": f"{self.name} turn {n}"}]})
        body = {"model": "gpt-5-codex", "instructions": LONG_SYSTEM, "input": self.items}
        if self.reasoning:
            body["reasoning"] = {"effort": "low"}
        resp = requests.post(url + "/v1/responses", json=body, timeout=30,
                             headers=auth_headers(Connection="close"))
        self.statuses.append(resp.status_code)
        if resp.status_code == 200:
            self.items += resp.json()["output"]
        return resp

    def served(self, upstream) -> list[dict]:
        """The fake's records of this conversation's answered requests, oldest first."""
        mine = f"{self.name} turn 0"
        return [r for r in upstream.requests if r["status"] == 200 and r["body"]
                and _first_text(r["body"]) == mine]

    def accounts(self, upstream) -> list[str]:
        return [r["account"] for r in self.served(upstream)]


def _first_text(body: dict) -> str | None:
    for item in body.get("input") or ():
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, list) and content and isinstance(content[0], dict):
                return content[0].get("text")
            return content if isinstance(content, str) else None
    return None


def recv_until(sock: socket.socket, marker: bytes, size: int = 4096) -> bytes:
    """What *sock* sends until *marker* is in it, or all it sent before it closed."""
    data = b""
    while marker not in data:
        chunk = sock.recv(size)
        if not chunk:
            break
        data += chunk
    return data


def raw_websocket(port: int, key: str | None = CLIENT_KEY, path: str = "/v1/responses",
                  timeout: float = 10.0) -> tuple[socket.socket, int]:
    """A WebSocket opened by hand (so a test can send frames no library would):
    the socket and the handshake's status (101 when it opened)."""
    import base64

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                  f"{auth}\r\n").encode())
    head = recv_until(sock, b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return sock, status


def ws_frame_head(length: int, opcode: int = 1, fin: bool = True) -> bytes:
    """A client frame header declaring *length* payload bytes, masked with a zero
    key (so the payload goes as it is)."""
    import struct

    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + b"\0\0\0\0"


def ws_close_code(sock: socket.socket, timeout: float = 15.0) -> int | None:
    """Read server frames until a close frame: its code (None: the connection ended first)."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while True:
            while len(buf) >= 2:
                length, start = buf[1] & 0x7F, 2
                if length == 126:
                    length, start = int.from_bytes(buf[2:4], "big"), 4
                elif length == 127:
                    length, start = int.from_bytes(buf[2:10], "big"), 10
                if len(buf) < start + length:
                    break
                opcode, payload = buf[0] & 0x0F, buf[start:start + length]
                buf = buf[start + length:]
                if opcode == 8:
                    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
    except OSError:
        return None


def worker_pids(gw: "Gateway") -> list[int]:
    """The gunicorn workers of *gw* (children of its arbiter)."""
    pid = gw.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def peak_rss_kib(pid: int) -> int:
    """The highest resident set size *pid* has had (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def open_responses_errors(obj: dict, kind: str = "response") -> list[str]:
    """What the Open Responses schema (``openresponses-types``) finds wrong with a
    response object (*kind* ``"response"``) or a streamed event (*kind* ``"event"``,
    checked against the model of its ``type``); [] when it validates."""
    import openresponses_types as spec
    from pydantic import BaseModel, ValidationError

    if kind == "response":
        model = spec.ResponseResource
    else:
        models = {}
        for value in vars(spec).values():
            if isinstance(value, type) and issubclass(value, BaseModel) \
                    and value.__name__.endswith("StreamingEvent"):
                kind_type = value.model_fields["type"].annotation  # an Enum of one value
                for member in getattr(kind_type, "__members__", {}).values():
                    models[member.value] = value
        model = models.get(obj.get("type"))
        if model is None:
            return [f"no Open Responses event type {obj.get('type')!r}"]
    try:
        model.model_validate(obj)
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return []


def readable(sock, timeout: float) -> bool:
    """Whether *sock* has something to read within *timeout* seconds (poll, not select:
    a long run opens descriptors above 1023, which select refuses)."""
    import select

    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))
