"""tests.deploy.nginx
~~~~~~~~~~~~~~~~~~~~
A real nginx (Debian's package) running the shipped
``deploy/nginx/codex-gateway.conf`` in the foreground with a temporary prefix.

The shipped file is included verbatim inside a minimal ``http {}`` block, with
exactly these substitutions (``render``; each must match exactly as
often as stated, so the file cannot drift away from the harness unnoticed):

* ``listen 80;`` → ``listen 127.0.0.1:<http port>;`` and ``listen 443 ssl;`` →
  ``listen 127.0.0.1:<tls port> ssl;`` plus one plain ``listen 127.0.0.1:<port>;``
  on the same server block, for the CLI clients (they get ``http://`` and no CA);
* the two ``listen [::]:…`` lines are dropped (IPv6 may be absent in CI);
* ``server 127.0.0.1:8080;`` → the test gunicorn's port;
* ``/etc/letsencrypt/live/gateway.example.com/`` → a directory holding a fresh
  self-signed certificate for ``gateway.example.com`` and ``127.0.0.1``;
* ``/var/www/html`` → an empty directory in the prefix;
* ``/var/log/nginx/access.log`` (both server blocks) → ``access.log`` in the prefix;
* ``overrides``: named directives a single test scales (``proxy_read_timeout``)
  or flips for a control, each replaced at its one occurrence; ``location_extra``:
  directives a control adds after ``proxy_pass``. Tests that use either say so.

The surrounding ``http {}`` keeps what Debian's ``nginx.conf`` sets that matters
here (sendfile, tcp_nopush, gzip on) and adds gzip for ``text/event-stream`` and
``application/json``, as an admin might: it must not hold streams back.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from tests.process import stop_process

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx" / "codex-gateway.conf"
DOMAIN = "gateway.example.com"
CERT_DIR = f"/etc/letsencrypt/live/{DOMAIN}/"
WEBROOT = "/var/www/html"


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def directive(text: str, name: str) -> list[str]:
    """Every value of directive *name* in nginx config *text* (comments ignored)."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith(name + " ") and line.endswith(";"):
            out.append(line[len(name):-1].strip())
    return out


def seconds(value: str) -> float:
    """nginx time ('900s', '15m', '1h', '60') in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert m, value
    factor = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * factor


def size(value: str) -> int:
    """nginx size ('32m', '1k', '1024') in bytes."""
    m = re.fullmatch(r"(\d+)([kKmMgG])?", value)
    assert m, value
    return int(m.group(1)) * {None: 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[
        (m.group(2) or "").lower() or None]


def make_certificate(directory: Path) -> Path:
    """A self-signed certificate for DOMAIN and 127.0.0.1 as certbot lays it out."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={DOMAIN}",
         "-addext", f"subjectAltName=DNS:{DOMAIN},IP:127.0.0.1",
         "-keyout", str(directory / "privkey.pem"), "-out", str(directory / "fullchain.pem")],
        check=True, capture_output=True)
    return directory / "fullchain.pem"


def render(text: str, *, gunicorn_port: int, http_port: int, tls_port: int, port: int,
           cert_dir: str, webroot: str, log_dir: str, overrides: dict[str, str] | None = None,
           location_extra: str = "") -> str:
    """The shipped config with the substitutions of the module docstring."""
    subs = [
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n", 1),
        ("    listen [::]:80;\n", "", 1),
        ("    listen 443 ssl;\n",
         f"    listen 127.0.0.1:{tls_port} ssl;\n    listen 127.0.0.1:{port};\n", 1),
        ("    listen [::]:443 ssl;\n", "", 1),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{gunicorn_port};", 1),
        (CERT_DIR, cert_dir.rstrip("/") + "/", 2),
        (WEBROOT, webroot, 2),  # the root directive and the certbot comment
        ("/var/log/nginx/access.log", f"{log_dir}/access.log", 2),
    ]
    for old, new, count in subs:
        found = text.count(old)
        assert found == count, f"{SHIPPED.name}: expected {count}x {old!r}, found {found}"
        text = text.replace(old, new)
    for name, value in (overrides or {}).items():
        pattern = re.compile(rf"^(\s*{re.escape(name)}\s+)[^;]+;", re.M)
        text, n = pattern.subn(rf"\g<1>{value};", text)
        assert n == 1, f"override {name}: {n} matches"
    if location_extra:
        anchor = "proxy_pass http://codex_gateway;\n"
        assert text.count(anchor) == 1
        text = text.replace(anchor, anchor + f"        {location_extra}\n")
    return text


MAIN_CONF = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    gzip on;
    gzip_min_length 1;
    gzip_types text/event-stream application/json;
    include {prefix}/sites-enabled/codex-gateway.conf;
}}
"""


class Nginx:
    """nginx in the foreground on loopback ports, serving the shipped server block."""

    def __init__(self, gunicorn_port: int, overrides: dict[str, str] | None = None,
                 binary: str | None = None, location_extra: str = ""):
        self.binary = binary or find_nginx()
        if not self.binary:
            raise RuntimeError("nginx is not installed (tests/clients/install.sh installs it)")
        self.prefix = Path(tempfile.mkdtemp(prefix="cgw-nginx-"))
        self.prefix.chmod(0o755)  # workers run as an unprivileged user when started as root
        (self.prefix / "tmp").mkdir()
        (self.prefix / "www").mkdir()
        (self.prefix / "sites-enabled").mkdir()
        self.cert_dir = self.prefix / "letsencrypt" / "live" / DOMAIN
        self.ca_file = str(make_certificate(self.cert_dir))
        self.http_port, self.tls_port, self.port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls_url = f"https://127.0.0.1:{self.tls_port}"
        self.conf_text = render(SHIPPED.read_text(), gunicorn_port=gunicorn_port,
                                http_port=self.http_port, tls_port=self.tls_port, port=self.port,
                                cert_dir=str(self.cert_dir), webroot=str(self.prefix / "www"),
                                log_dir=str(self.prefix),
                                overrides=overrides, location_extra=location_extra)
        (self.prefix / "sites-enabled" / "codex-gateway.conf").write_text(self.conf_text)
        (self.prefix / "nginx.conf").write_text(MAIN_CONF.format(prefix=self.prefix))
        self.proc: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
                "-e", str(self.prefix / "error.log"), *extra]

    def test_config(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-t"), capture_output=True, text=True)

    def start(self) -> "Nginx":
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=open(self.prefix / "stderr.log", "ab"))
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {self.logs()}")

    def reload(self) -> None:
        """What `systemctl reload nginx` does: SIGHUP, old workers finish their requests."""
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        stop_process(self.proc)

    def logs(self) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            path = self.prefix / name
            if path.exists():
                out.append(f"--- {name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(out)

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
