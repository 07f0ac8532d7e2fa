"""tests.deploy.vps_sim
~~~~~~~~~~~~~~~~~~~~~~
Plays the deploy guide (docs/deploy/vps.md), command by command, on a throwaway copy of this machine:
the "empty VPS" is this Debian machine seen through overlays (``/etc``, ``/opt``,
``/var``, ``/run``, ``/root``, ``/usr/local`` are copy-on-write into a temporary
directory, so nothing on the real machine changes), and after ``pip install``,
the last step that needs the internet, in a network namespace of its own with
only a loopback: nginx listens on the real ports 80 and 443, and
``gateway.example.com`` resolves to 127.0.0.1 there (``/etc/hosts``).

``COMMANDS`` says, for every command of the guide, how it is played:

* ``vps``: run verbatim with bash, as root, in /root;
* ``laptop``: run verbatim with bash, with the laptop's environment (the client key
  in ``CODEX_GATEWAY_KEY``, the test CA trusted through ``CURL_CA_BUNDLE`` and
  ``SSL_CERT_FILE``, the test virtualenv's python3, which has ``openai``);
* ``clients``: run by tests/clients with the pinned Codex CLI / OpenCode / Claude Code (which
  tests/deploy/test_guide.py checks);
* a method name: a command that needs a real ssh peer, ACME server, apt
  mirror or a running systemd; the method says what it runs instead and what
  it checks.

Stand-ins, and only these: the fake Codex backend (by a name with an IPv6 and an
IPv4 address in /etc/hosts, like the real one) and the fake OAuth issuer (``[upstream]``
and ``[oauth]`` appended to /etc/codex-gateway/config.toml), a self-signed
certificate where certbot puts its certificate, and the test CA.

Run as root by tests/deploy/test_guide.py, in a PID namespace as well so that nothing
it started outlives it::

    unshare --mount --propagation private --pid --fork --kill-child --mount-proc -- \
        python -m tests.deploy.vps_sim WORKDIR
"""
from __future__ import annotations

import ctypes
import json
import os
import pwd
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path

import requests

from tests.deploy import guide
from tests.deploy import unit as unitfile
from tests.deploy.nginx import DOMAIN, SHIPPED, directive, make_certificate
from tests.fakes.codex_upstream import FakeCodexUpstream
from tests.fakes.oauth_issuer import FakeOAuthIssuer
from tests.support import write_auth_file

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
OVERLAID = ("/etc", "/opt", "/var", "/run", "/root", "/usr/local")
UPSTREAM_PORT, ISSUER_PORT = 18001, 18002
BACKEND = "codex-backend.test"
VPS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOTIFY = "/run/codex-gateway-notify.sock"
UNIT_PATH = "/etc/systemd/system/codex-gateway.service"
CLONE_NEWNET = 0x40000000

COMMANDS = {
    "apt-get update": "apt_update",
    "apt-get install -y python3 python3-venv nginx certbot curl": "apt_install",
    "git archive --format=tar HEAD | ssh root@gateway.example.com 'mkdir -p "
    "/opt/codex-gateway/src && tar -x -C /opt/codex-gateway/src'": "git_archive",
    "python3 -m venv /opt/codex-gateway": "vps",
    "/opt/codex-gateway/bin/pip install /opt/codex-gateway/src": "pip_install",
    "useradd --system --home-dir /var/lib/codex-gateway --no-create-home --shell "
    "/usr/sbin/nologin codex-gateway": "vps",
    "install -d -o codex-gateway -g codex-gateway -m 700 /var/lib/codex-gateway": "vps",
    "install -D -m 644 /opt/codex-gateway/src/deploy/systemd/config.toml "
    "/etc/codex-gateway/config.toml": "install_config",
    "install -m 644 /opt/codex-gateway/src/deploy/systemd/codex-gateway.service "
    "/etc/systemd/system/codex-gateway.service": "vps",
    "install -m 755 /opt/codex-gateway/src/deploy/systemd/codex-gateway-cli "
    "/usr/local/bin/codex-gateway": "vps",
    "codex-gateway check": "vps",
    "codex-gateway keys create --name laptop": "keys_create",
    "codex-gateway login --device": "vps",
    "scp ~/.codex/auth.json root@gateway.example.com:codex-auth.json": "scp_auth",
    "install -o codex-gateway -m 600 codex-auth.json "
    "/var/lib/codex-gateway/codex-auth.json": "vps",
    "codex-gateway accounts import /var/lib/codex-gateway/codex-auth.json": "vps",
    "rm codex-auth.json /var/lib/codex-gateway/codex-auth.json": "vps",
    "codex-gateway accounts list": "vps",
    "certbot certonly --webroot -w /var/www/html -d gateway.example.com --agree-tos -m "
    "you@example.com --non-interactive --deploy-hook \"systemctl reload nginx\"": "certbot",
    "install -m 644 /opt/codex-gateway/src/deploy/nginx/codex-gateway.conf "
    "/etc/nginx/sites-available/codex-gateway.conf": "vps",
    "sed -i 's/gateway\\.example\\.com/gateway.example.com/g' "
    "/etc/nginx/sites-available/codex-gateway.conf": "vps",
    "ln -s /etc/nginx/sites-available/codex-gateway.conf "
    "/etc/nginx/sites-enabled/codex-gateway.conf": "vps",
    "rm /etc/nginx/sites-enabled/default": "vps",
    "nginx -t": "vps",
    "systemctl reload nginx": "reload_nginx",
    "systemctl daemon-reload": "daemon_reload",
    "systemctl enable --now codex-gateway": "enable_now",
    "systemctl status codex-gateway": "status",
    "curl https://gateway.example.com/healthz": "vps",
    "export CODEX_GATEWAY_KEY=cgw-paste-the-key-from-step-4": "export_key",
    "curl https://gateway.example.com/v1/models -H \"Authorization: Bearer "
    "$CODEX_GATEWAY_KEY\"": "laptop",
    "curl -N https://gateway.example.com/v1/responses -H \"Authorization: Bearer "
    "$CODEX_GATEWAY_KEY\" -H 'Content-Type: application/json' -d '{\"model\": "
    "\"gpt-5-codex\", \"input\": \"Say hello\", \"stream\": true}'": "laptop",
    "curl https://gateway.example.com/v1/chat/completions -H \"Authorization: Bearer "
    "$CODEX_GATEWAY_KEY\" -H 'Content-Type: application/json' -d '{\"model\": "
    "\"gpt-5-codex\", \"messages\": [{\"role\": \"user\", \"content\": \"Say hello\"}]}'":
        "laptop",
    "codex exec \"Say hello\"": "clients",
    "codex exec resume --last \"Say it again\"": "clients",
    "opencode run \"Say hello\"": "clients",
    "opencode run --continue \"Say it again\"": "clients",
    "export ANTHROPIC_BASE_URL=https://gateway.example.com": "clients",
    "export ANTHROPIC_AUTH_TOKEN=$CODEX_GATEWAY_KEY": "clients",
    "claude -p \"Say hello\"": "clients",
    "claude -p --continue \"Say it again\"": "clients",
    "python3 hello.py": "laptop",
    "systemctl reload codex-gateway": "reload_gateway",
    "systemctl restart codex-gateway": "restart_gateway",
    "journalctl -u codex-gateway -f": "journal",
}

HELLO = "Hello from the fake upstream."


def _check_output(cmd: str, out: str) -> None:
    """What the guide says each command prints."""
    if cmd == "codex-gateway check":
        assert "config ok: bind 127.0.0.1:8080, state dir /var/lib/codex-gateway" in out, out
    elif cmd == "codex-gateway login --device":
        assert "Logged in" in out and "enter the code" in out, out
    elif cmd.startswith("codex-gateway accounts import"):
        assert "Imported codex-acct-vps-import" in out, out
    elif cmd == "codex-gateway accounts list":
        assert "acct-vps-import" in out and len(out.strip().splitlines()) >= 2, out
    elif cmd == "nginx -t":
        assert "syntax is ok" in out and "test is successful" in out, out
        assert "[warn]" not in out and "[emerg]" not in out, out
    elif cmd.endswith("/healthz"):
        health = json.loads(out)
        assert health["status"] == "ok" and health["accounts"] == 2, health
    elif "/v1/models" in cmd:
        assert json.loads(out)["object"] == "list", out
    elif "/v1/responses" in cmd:
        assert "event: response.completed" in out and '"delta"' in out, out
    elif "/v1/chat/completions" in cmd:
        assert json.loads(out)["choices"][0]["message"]["content"] == HELLO, out
    elif cmd == "python3 hello.py":
        assert out.splitlines() == [HELLO, HELLO], out


class Sim:
    def __init__(self, work: Path):
        self.work = work
        self.laptop = work / "laptop"
        self.laptop_home = work / "laptop-home"
        self.journal_path = work / "journal.log"
        self.transcript: list[dict] = []
        self.key: str | None = None
        self.laptop_env: dict[str, str] = {}
        self.ca_file: str | None = None
        self.service: subprocess.Popen | None = None
        self.upstream = self.issuer = None
        self.netns = False
        self.nginx_started = False

    # -- the machine ------------------------------------------------------------

    def overlay(self) -> None:
        for path in OVERLAID:
            base = self.work / "overlay" / path.strip("/").replace("/", "_")
            (base / "upper").mkdir(parents=True)
            (base / "work").mkdir()
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={path},upperdir={base}/upper,workdir={base}/work", path],
                           check=True)
        Path("/run/nginx.pid").unlink(missing_ok=True)  # the real machine's nginx, if any
        with open("/etc/hosts", "a") as fh:
            # The backend by name, with two addresses like chatgpt.com (IPv6 and IPv4): the
            # gateway resolves and sorts them as it does in production.
            fh.write(f"\n127.0.0.1 {DOMAIN}\n::1 {BACKEND}\n127.0.0.1 {BACKEND}\n")
        self.laptop.mkdir()
        (self.laptop_home / ".codex").mkdir(parents=True)
        write_auth_file(self.laptop_home / ".codex" / "auth.json", account_id="acct-vps-import")
        for block in guide.blocks():  # the laptop's files, as the guide writes them
            if block.file:
                path = (self.laptop_home / block.file[2:] if block.file.startswith("~/")
                        else self.laptop / block.file)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.body)

    def enter_private_network(self) -> None:
        """From here on: only a loopback. Must run before any thread is started."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        self.netns = True
        self.upstream = FakeCodexUpstream(port=UPSTREAM_PORT).start()
        self.issuer = FakeOAuthIssuer(port=ISSUER_PORT, auto_approve=True).start()

    # -- running commands ---------------------------------------------------------

    def bash(self, cmd: str, where: str, check=True, stdin=None, timeout=120) -> str:
        if where == "vps":
            env = {"PATH": VPS_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}
            if self.ca_file:  # as Let's Encrypt's chain is trusted on the real machine
                env.update(CURL_CA_BUNDLE=self.ca_file, SSL_CERT_FILE=self.ca_file)
            cwd = "/root"
        else:
            env = {"PATH": f"{VENV_BIN}:{VPS_PATH}", "HOME": str(self.laptop_home),
                   "LANG": "C.UTF-8", **self.laptop_env}
            cwd = str(self.laptop)
        start = time.monotonic()
        proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, stdin=stdin)
        self.record(cmd, where, proc.returncode, proc.stdout, proc.stderr, start)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd!r} failed ({proc.returncode}):\n{proc.stdout}\n"
                                 f"{proc.stderr}")
        if cmd.startswith(("curl ", "python3 ")):
            return proc.stdout  # curl's progress meter goes to stderr when piped
        return proc.stdout + proc.stderr

    def record(self, cmd, how, rc, out="", err="", start=None) -> None:
        took = round(time.monotonic() - start, 2) if start else None
        self.transcript.append({"command": cmd, "how": how, "rc": rc, "stdout": out[-3000:],
                                "stderr": err[-3000:], "seconds": took})

    def play(self) -> None:
        self.overlay()
        for cmd in guide.commands():
            how = COMMANDS[cmd]
            self.transcript.append({"guide": cmd, "how": how})
            if how == "clients":
                self.record(cmd, "run by tests/clients", None)
                continue
            if how in ("vps", "laptop"):
                out = self.bash(cmd, how)
            else:
                out = getattr(self, how)(cmd)
            _check_output(cmd, out or "")
        self.after()
        self.trace_run()

    # -- stand-ins ------------------------------------------------------------------

    def apt_update(self, cmd) -> str:
        lists = [p for p in Path("/var/lib/apt/lists").glob("*_Packages*")]
        if lists:
            self.record(cmd, f"checked: {len(lists)} package lists present", None)
            return ""
        return self.bash(cmd, "vps")  # into the /var overlay

    def apt_install(self, cmd) -> str:
        """Simulated (`apt-get -s`): every package resolves on this Debian/Ubuntu; the
        machine already has them (tests/clients/install.sh)."""
        out = self.bash(cmd.replace("apt-get install", "apt-get -s install"), "vps")
        assert "Unable to locate" not in out and "E:" not in out, out
        for tool in ("python3", "nginx", "curl"):
            assert subprocess.run(["bash", "-c", f"command -v {tool}"], env={"PATH": VPS_PATH},
                                  capture_output=True).returncode == 0, tool
        return out

    def git_archive(self, cmd) -> str:
        """The laptop side runs in the repository; the ssh side runs on the VPS. With
        uncommitted changes (a developer's tree) the archive is of the working tree."""
        local, _, remote = cmd.partition(" | ssh root@gateway.example.com ")
        remote = shlex.split(remote)[0]
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        if dirty:
            files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                                   cwd=ROOT, capture_output=True, check=True).stdout
            names = [n for n in files.decode().split("\0") if n and (ROOT / n).is_file()]
            archive = subprocess.run(["tar", "-c", "--null", "-T", "-"], cwd=ROOT,
                                     input="\0".join(names).encode(), capture_output=True,
                                     check=True).stdout
            how = "working tree (uncommitted changes)"
        else:
            archive = subprocess.run(shlex.split(local), cwd=ROOT, capture_output=True,
                                     check=True).stdout
            how = local
        proc = subprocess.run(["bash", "-c", remote], input=archive, capture_output=True,
                              cwd="/root", env={"PATH": VPS_PATH})
        self.record(cmd, f"archive: {how}; remote: {remote}", proc.returncode)
        assert proc.returncode == 0, proc.stderr
        assert Path("/opt/codex-gateway/src/setup.cfg").is_file()
        return ""

    def pip_install(self, cmd) -> str:
        out = self.bash(cmd, "vps", timeout=300)
        self.enter_private_network()
        return out

    def install_config(self, cmd) -> str:
        out = self.bash(cmd, "vps")
        with open("/etc/codex-gateway/config.toml", "a") as fh:  # the only stand-ins
            fh.write(f'\n[upstream]\ncodex_base_url = "http://{BACKEND}:{UPSTREAM_PORT}'
                     f'/backend-api/codex"\n\n[oauth]\nissuer = "http://127.0.0.1:{ISSUER_PORT}"\n'
                     f'token_url = "http://127.0.0.1:{ISSUER_PORT}/oauth/token"\n')
        return out

    def keys_create(self, cmd) -> str:
        # The unit refuses to start without a key: try its ExecStartPre before and after.
        refused = self.exec_start_pre(check=False)
        assert refused.returncode == 1 and "no client key" in refused.stderr, refused
        out = self.bash(cmd, "vps")
        [self.key] = [w for w in out.split() if w.startswith("cgw-")]
        owner = Path("/var/lib/codex-gateway/client_keys").stat()
        assert pwd.getpwuid(owner.st_uid).pw_name == "codex-gateway"
        assert stat.S_IMODE(owner.st_mode) == 0o600
        return out

    def scp_auth(self, cmd) -> str:
        """scp: the laptop's ~/.codex/auth.json lands in root's home on the VPS."""
        data = (self.laptop_home / ".codex" / "auth.json").read_bytes()
        Path("/root/codex-auth.json").write_bytes(data)
        self.record(cmd, "copied the laptop's ~/.codex/auth.json to /root/codex-auth.json", 0)
        return ""

    def certbot(self, cmd) -> str:
        """No ACME server here: check what certbot is told against the server block,
        and put a self-signed certificate where certbot puts its own."""
        args = shlex.split(cmd)
        webroot, domain = args[args.index("-w") + 1], args[args.index("-d") + 1]
        hook = args[args.index("--deploy-hook") + 1]
        shipped = SHIPPED.read_text()
        assert f"root {webroot};" in shipped, "certbot's webroot is not nginx's ACME root"
        assert f"server_name {domain};" in shipped
        assert hook in COMMANDS and COMMANDS[hook] == "reload_nginx"
        assert Path(webroot).is_dir()  # Debian's default site serves it until step 6
        live = Path(f"/etc/letsencrypt/live/{domain}")
        assert directive(shipped, "ssl_certificate") == [f"{live}/fullchain.pem"]
        assert directive(shipped, "ssl_certificate_key") == [f"{live}/privkey.pem"]
        self.ca_file = str(make_certificate(live))
        self.laptop_env.update(CURL_CA_BUNDLE=self.ca_file, SSL_CERT_FILE=self.ca_file)
        self.record(cmd, f"stand-in: self-signed certificate in {live}", 0)
        return ""

    def reload_nginx(self, cmd) -> str:
        """What Debian's nginx.service does: start (the package started it on install),
        then `nginx -s reload`."""
        if not self.nginx_started:  # an nginx of the real machine is not this VPS's
            self.nginx_started = True
            out = self.bash("nginx", "vps")
        else:
            out = self.bash("nginx -s reload", "vps")
        _wait_port(443)
        return out

    def daemon_reload(self, cmd) -> str:
        """systemd reads the unit: `systemd-analyze verify` at its installed path, with the
        installed virtualenv (it checks that ExecStart's program exists)."""
        out = self.bash(f"systemd-analyze verify {UNIT_PATH}", "vps")
        assert out.strip() == "", out
        return out

    def sandboxed(self, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--",
             sys.executable, "-m", "tests.deploy.sandbox", UNIT_PATH, "--", *argv],
            cwd=ROOT, env={"PATH": VPS_PATH, "PYTHONPATH": str(ROOT),
                           "LANG": "C.UTF-8", **kw.pop("env", {})}, **kw)

    def exec_start_pre(self, check=True) -> subprocess.CompletedProcess:
        svc = unitfile.service(Path(UNIT_PATH).read_text())
        proc = self.sandboxed(unitfile.argv(unitfile.one(svc, "ExecStartPre")),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check:
            assert proc.returncode == 0, err
        return result

    def enable_now(self, cmd) -> str:
        """[Install] is there; then ExecStartPre and ExecStart in the unit's sandbox, and
        the start completes when the main process says READY=1 (Type=notify,
        NotifyAccess=main: the sender's pid is checked)."""
        unit = unitfile.parse(Path(UNIT_PATH).read_text())
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]
        svc = unit["Service"]
        assert unitfile.one(svc, "Type") == "notify"
        assert unitfile.one(svc, "NotifyAccess") == "main"
        self.exec_start_pre()
        sender = self.start_service()
        assert sender == self.service.pid, (sender, self.service.pid)
        self.record(cmd, f"unit started in its sandbox; READY=1 from the main pid {sender}", 0)
        return ""

    def status(self, cmd) -> str:
        assert self.service and self.service.poll() is None, self.journal_path.read_text()
        main = _ps(self.service.pid)
        assert main["user"] == "codex-gateway", main
        self.record(cmd, f"main process {main}", 0)
        return ""

    def export_key(self, cmd) -> str:
        name = cmd.split()[1].split("=")[0]
        self.laptop_env[name] = self.key
        self.record(cmd, f"{name} set to the key printed by `keys create`", 0)
        return ""

    def stream_across(self, action) -> None:
        """Start a slow stream through nginx, run *action* after its first bytes, and
        check the stream still completes."""
        self.upstream.configure(event_delay=0.2)
        resp = requests.post(f"https://{DOMAIN}/v1/responses", stream=True, verify=self.ca_file,
                             headers={"Authorization": f"Bearer {self.key}"}, timeout=30,
                             json={"model": "gpt-5-codex", "input": "Say hello", "stream": True})
        chunks = resp.iter_content(chunk_size=None)
        raw = next(chunks)
        action()
        for chunk in chunks:
            raw += chunk
        self.upstream.configure(event_delay=0.0)
        assert b"event: response.completed" in raw, raw[-500:]

    def reload_gateway(self, cmd) -> str:
        """ExecReload in the middle of a stream: the stream finishes, new requests work."""
        svc = unitfile.service(Path(UNIT_PATH).read_text())
        reload_argv = unitfile.argv(unitfile.one(svc, "ExecReload"), MAINPID=str(self.service.pid))
        self.stream_across(lambda: subprocess.run(reload_argv, check=True))
        time.sleep(1)
        after = requests.get(f"https://{DOMAIN}/healthz", verify=self.ca_file, timeout=10)
        assert after.status_code == 200
        self.record(cmd, f"ExecReload {reload_argv} during a stream: it completed", 0)
        return ""

    def restart_gateway(self, cmd) -> str:
        """systemctl restart: stop (SIGTERM to the main process, KillMode=mixed) in the
        middle of a stream, which finishes; then ExecStartPre and ExecStart again."""
        svc = unitfile.service(Path(UNIT_PATH).read_text())
        self.stream_across(lambda: self.service.send_signal(signal.SIGTERM))
        stop_limit = unitfile.seconds(unitfile.one(svc, "TimeoutStopSec"))
        assert self.service.wait(stop_limit) == 0
        self.exec_start_pre()
        sender = self.start_service()
        assert sender == self.service.pid
        health = requests.get(f"https://{DOMAIN}/healthz", verify=self.ca_file, timeout=10)
        assert health.status_code == 200
        self.record(cmd, "stopped during a stream (it completed), started again: READY=1", 0)
        return ""

    def journal(self, cmd) -> str:
        text = self.journal_path.read_text(errors="replace")
        assert "Handling signal: hup" in text and "Traceback" not in text, text[-3000:]
        assert "continuity=" in text and "cached_tokens=" in text, text[-3000:]
        self.record(cmd, "the service's output, as journald would have it", 0,
                    text[-1500:])
        return text

    # -- after the guide -----------------------------------------------------------------

    def after(self) -> None:
        """What the sandbox left: state files belong to the service user, private."""
        state = Path("/var/lib/codex-gateway")
        for path in [state, *state.rglob("*")]:
            st = path.lstat()
            assert pwd.getpwuid(st.st_uid).pw_name == "codex-gateway", path
            assert stat.S_IMODE(st.st_mode) & 0o007 == 0, (path, oct(st.st_mode))
        records = self.upstream.requests
        assert records and all(r["status"] == 200 for r in records), records
        self.record("(after the guide)", f"{len(records)} upstream requests, all 200; "
                    "state files owned by codex-gateway, no access for others", 0)

    def start_service(self, prefix: list[str] = ()) -> int:
        """ExecStart in the unit's sandbox; returns the pid that said READY=1."""
        svc = unitfile.service(Path(UNIT_PATH).read_text())
        if os.path.exists(NOTIFY):
            os.unlink(NOTIFY)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(NOTIFY)
        os.chmod(NOTIFY, 0o777)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.settimeout(60)
        journal = open(self.journal_path, "ab")
        self.service = self.sandboxed([*prefix, *unitfile.argv(unitfile.one(svc, "ExecStart"))],
                                      env={"NOTIFY_SOCKET": NOTIFY}, stdout=journal,
                                      stderr=subprocess.STDOUT)
        try:
            message, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            raise AssertionError("no READY=1 from the service:\n"
                                 + self.journal_path.read_text()) from None
        finally:
            sock.close()
        assert b"READY=1" in message, message
        [(_, _, creds)] = ancillary
        sender = int.from_bytes(creds[:4], sys.byteorder)
        return sender

    def stop_service(self, timeout=30) -> None:
        """systemctl stop: SIGTERM to the main process (KillMode=mixed), then wait."""
        if self.service and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(timeout)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()

    def trace_run(self) -> None:
        """The service once more, under strace (the only change: strace in front of
        ExecStart, in the same sandbox), for the system calls and socket families it
        uses: start, streams on both endpoints, a client that leaves, a wrong key, a new
        key, a reload, a stop. tests/deploy/test_guide.py compares them with the unit."""
        self.stop_service()
        state_trace = "/var/lib/codex-gateway/syscalls.trace"
        ready_from = self.start_service(["/usr/bin/strace", "-f", "-qq", "-o", state_trace])
        url, h = f"https://{DOMAIN}", {"Authorization": f"Bearer {self.key}"}
        body = {"model": "gpt-5-codex", "input": "Say hello", "stream": True}

        def post(path, payload, **kw):
            return requests.post(url + path, json=payload, headers=kw.pop("headers", h),
                                 verify=self.ca_file, timeout=30, **kw)

        assert b"response.completed" in post("/v1/responses", body).content
        assert post("/v1/responses", dict(body, stream=False)).status_code == 200
        chat = {"model": "gpt-5-codex", "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}
        assert b"[DONE]" in post("/v1/chat/completions", chat).content
        self.upstream.configure(event_delay=0.2)
        resp = post("/v1/responses", body, stream=True)
        next(resp.iter_content(chunk_size=None))
        resp.close()  # a client that leaves
        self.upstream.configure(event_delay=0.0)
        wrong = post("/v1/responses", body, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        new_key = self.bash("codex-gateway keys create --name trace", "vps").split()[0]
        assert post("/v1/responses", body,
                    headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
        os.kill(ready_from, signal.SIGHUP)  # gunicorn: strace's child here
        time.sleep(2)
        assert post("/v1/responses", dict(body, stream=False)).status_code == 200
        os.kill(ready_from, signal.SIGTERM)  # strace passes no signal on: stop gunicorn itself
        assert self.service.wait(30) == 0, self.journal_path.read_text()[-2000:]
        data = Path(state_trace).read_bytes()
        Path(state_trace).unlink()
        (self.work / "syscalls.trace").write_bytes(data)
        self.record("(trace run)", f"service under strace; READY=1 from pid {ready_from}; "
                    f"{len(data)} bytes of trace", 0)

    def stop(self) -> None:
        self.stop_service()
        pid = _pidfile("/run/nginx.pid")
        if self.nginx_started and _alive(pid):
            os.kill(pid, signal.SIGTERM)
        for fake in (self.upstream, self.issuer):
            if fake:
                fake.stop()


def _pidfile(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _wait_port(port: int, timeout=10) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _ps(pid: int) -> dict:
    """unshare and the sandbox exec in place, and so does `codex-gateway serve`: the
    process started is the unit's main process, gunicorn's arbiter."""
    st = Path(f"/proc/{pid}").stat()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return {"pid": pid, "user": pwd.getpwuid(st.st_uid).pw_name,
            "cmdline": " ".join(c.decode() for c in cmdline if c),
            "workers": len(_children(pid))}


def main(work: str) -> int:
    sim = Sim(Path(work))
    code = 0
    try:
        sim.play()
    except BaseException:
        sim.transcript.append({"error": traceback.format_exc()})
        code = 1
    finally:
        try:
            sim.stop()
        finally:
            (Path(work) / "transcript.json").write_text(json.dumps(sim.transcript, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
