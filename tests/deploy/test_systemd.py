"""The shipped systemd unit: systemd accepts it, and its settings hold against what the
gateway does. The unit's sandbox itself (file system, user, no new privileges, no
write+execute memory) and its system-call filter and address families are checked
on the running service in test_guide.py's VPS (tests/deploy/sandbox.py, vps_sim.py)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from gateway import config as gwconfig
from tests.support import Gateway
from tests.support import auth_headers, gateway_env

from . import guide, unit
from .harness import ROOT, tool
from .nginx import SHIPPED, directive, size

SVC = unit.service()
DEPLOY_CONFIG = ROOT / "deploy" / "systemd" / "config.toml"
BODY = {"model": "gpt-5-codex", "input": "Say hello", "stream": True}


def _venv_paths(text: str) -> str:
    return text.replace("/opt/codex-gateway/bin/", f"{Path(sys.executable).parent}/")


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    """As root: at the unit's own paths, /opt/codex-gateway being the test virtualenv in a
    private mount namespace. Otherwise (a developer without root): a copy whose
    /opt/codex-gateway/bin/ paths point at the test virtualenv, nothing else changed."""
    analyze = tool("systemd-analyze")
    if os.geteuid() == 0 and shutil.which("unshare"):
        script = (f"mount -t tmpfs tmpfs /opt && ln -s {Path(sys.executable).parent.parent} "
                  f"/opt/codex-gateway && {analyze} verify {unit.UNIT}")
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                               "sh", "-c", script], capture_output=True, text=True)
    else:
        copy = tmp_path / "codex-gateway.service"
        copy.write_text(_venv_paths(unit.UNIT.read_text()))
        proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_unit_settings_match_the_gateway_and_the_guide():
    cfg = gwconfig.load(str(DEPLOY_CONFIG), env={})
    graceful = max(cfg.server.graceful_timeout, gwconfig.ServerConfig().graceful_timeout)
    assert unit.seconds(unit.one(SVC, "TimeoutStopSec")) > graceful == 900
    assert unit.one(SVC, "Type") == "notify" and unit.one(SVC, "NotifyAccess") == "main"
    assert unit.one(SVC, "KillMode") == "mixed"
    assert unit.argv(unit.one(SVC, "ExecReload"), MAINPID="1") == ["/bin/kill", "-s", "HUP", "1"]
    exec_start = unit.argv(unit.one(SVC, "ExecStart"))
    assert exec_start == ["/opt/codex-gateway/bin/codex-gateway", "serve"]
    commands = guide.commands()
    assert "python3 -m venv /opt/codex-gateway" in commands
    env = unit.environment(SVC)
    assert env == {"CODEX_GATEWAY_CONFIG": "/etc/codex-gateway/config.toml"}
    assert any(c.endswith("config.toml /etc/codex-gateway/config.toml") for c in commands)
    # The state directory systemd creates is the one the configuration names.
    assert unit.one(SVC, "User") == unit.one(SVC, "Group") == "codex-gateway"
    assert cfg.accounts.state_dir == "/var/lib/" + unit.one(SVC, "StateDirectory")
    assert unit.one(SVC, "StateDirectoryMode") == "0700" and unit.one(SVC, "UMask") == "0077"
    # Threads: one per open stream (the upstream is read in the request's own thread), plus a few.
    assert int(unit.one(SVC, "TasksMax")) >= cfg.server.workers * cfg.server.threads + 64
    assert int(unit.one(SVC, "LimitNOFILE")) >= cfg.server.workers * cfg.server.threads * 4
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "MemoryDenyWriteExecute", "RestrictNamespaces", "LockPersonality"):
        assert unit.one(SVC, key) == "yes", key
    assert unit.one(SVC, "ProtectSystem") == "strict"
    assert "CapabilityBoundingSet" in SVC and unit.one(SVC, "CapabilityBoundingSet") == ""


def test_deploy_config_agrees_with_nginx():
    cfg = gwconfig.load(str(DEPLOY_CONFIG), env={})
    shipped = SHIPPED.read_text()
    assert directive(shipped, "server") == [cfg.server.bind]  # nginx's upstream
    assert size(directive(shipped, "client_max_body_size")[0]) == cfg.server.max_body_bytes
    assert cfg.server.max_body_bytes == gwconfig.ServerConfig().max_body_bytes
    assert gwconfig.is_loopback_bind(cfg.server.bind)
    assert cfg.server.keepalive_seconds == 15


def test_the_admin_command_runs_as_the_service_user_with_its_config():
    text = (ROOT / "deploy" / "systemd" / "codex-gateway-cli").read_text()
    assert "umask 077" in text  # the unit's UMask=0077
    assert "exec runuser -u codex-gateway -- /opt/codex-gateway/bin/codex-gateway" in text
    assert "--config /etc/codex-gateway/config.toml" in text


def test_start_refuses_without_a_client_key(tmp_path):
    """ExecStartPre, run as the unit runs it (systemd's $$ unescaped)."""
    pre = unit.argv(_venv_paths(unit.one(SVC, "ExecStartPre")))
    env = {"PATH": os.environ["PATH"], "CODEX_GATEWAY_ACCOUNTS_STATE_DIR": str(tmp_path)}
    refused = subprocess.run(pre, env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "codex-gateway keys create" in refused.stderr
    created = subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "create"], env=env,
                             capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    assert subprocess.run(pre, env=env, capture_output=True).returncode == 0


def test_gunicorn_tells_systemd_it_is_ready(tmp_path, upstream):
    """Type=notify: READY=1 arrives on $NOTIFY_SOCKET once the workers serve."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    gw = Gateway(dict(gateway_env(upstream, tmp_path), NOTIFY_SOCKET=path), workers=1,
                 name="notify")
    try:
        gw.start()
        assert "READY=1" in sock.recv(4096).decode()
    finally:
        gw.stop()
        sock.close()


def test_stop_lets_a_running_stream_finish(tmp_path, upstream):
    """systemctl stop (SIGTERM to the arbiter, KillMode=mixed) during a stream."""
    upstream.configure(event_delay=0.2)
    gw = Gateway(gateway_env(upstream, tmp_path, CODEX_GATEWAY_SERVER_GRACEFUL_TIMEOUT=30),
                 workers=1, name="stop").start()
    try:
        resp = requests.post(gw.url + "/v1/responses", json=BODY, headers=auth_headers(),
                             stream=True, timeout=30)
        chunks = resp.iter_content(chunk_size=None)
        raw = next(chunks)
        gw.proc.send_signal(signal.SIGTERM)
        for chunk in chunks:
            raw += chunk
        assert b"event: response.completed" in raw
        assert gw.proc.wait(10) == 0
    finally:
        gw.stop()
