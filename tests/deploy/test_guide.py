"""the deploy guide (docs/deploy/vps.md): every command is run or checked, and the whole guide works on a
fresh VPS (tests/deploy/vps_sim.py plays it in private mount and network namespaces)."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from gateway import config as gwconfig

from . import guide, unit, vps_sim
from .harness import IN_CI, ROOT, nginx_binary, tool
from .nginx import DOMAIN


def test_every_command_of_the_guide_is_run_or_checked():
    commands = guide.commands()
    assert len(commands) == len(set(commands)), "a command appears twice"
    missing = [c for c in commands if c not in vps_sim.COMMANDS]
    stale = [c for c in vps_sim.COMMANDS if c not in commands]
    assert not missing, f"guide commands no test runs or checks: {missing}"
    assert not stale, f"tests/deploy/vps_sim.py plays commands the guide lost: {stale}"
    for how in set(vps_sim.COMMANDS.values()) - {"vps", "laptop", "clients"}:
        assert callable(getattr(vps_sim.Sim, how, None)), how
    # The client commands are run by tests/clients, straight from the guide.
    from tests.clients import clients
    assert {c for c, how in vps_sim.COMMANDS.items() if how == "clients"} == \
        set(clients.CODEX_TURNS + clients.OPENCODE_TURNS + clients.CLAUDE_EXPORTS
            + clients.CLAUDE_TURNS)


def test_the_guide_files_are_valid():
    codex = tomllib.loads(guide.file("~/.codex/config.toml"))
    provider = codex["model_providers"][codex["model_provider"]]
    assert provider["wire_api"] == "responses" and provider["env_key"] == "CODEX_GATEWAY_KEY"
    assert provider["base_url"] == f"https://{DOMAIN}/v1"
    opencode = json.loads(guide.file("~/.config/opencode/opencode.json"))
    [(name, prov)] = opencode["provider"].items()
    assert prov["options"]["baseURL"] == f"https://{DOMAIN}/v1"
    assert opencode["model"].startswith(name + "/")
    ast.parse(guide.file("hello.py"))
    # The configuration the guide installs is valid and says what the guide says.
    cfg = gwconfig.load(str(ROOT / "deploy/systemd/config.toml"), env={})
    assert cfg.server.bind == "127.0.0.1:8080" and cfg.state_dir.as_posix() == \
        "/var/lib/codex-gateway"


def test_the_guide_on_a_fresh_vps(tmp_path):
    """Every VPS and laptop command of the deploy guide (docs/deploy/vps.md), in order, on a copy-on-write copy
    of this machine with only a loopback network: real nginx on 80/443 with the guide's
    files and paths, the unit's ExecStartPre/ExecStart in its sandbox as the
    codex-gateway user (READY=1 from the main pid), curl and the SDK over TLS, a reload
    in the middle of a stream. Then the service under strace: every system call and
    socket family it used must pass the unit's SystemCallFilter= and
    RestrictAddressFamilies=."""
    for name in ("unshare", "ip", "runuser", "useradd", "openssl", "strace", "curl"):
        tool(name)
    nginx_binary()
    tool("systemd-analyze")
    if os.geteuid() != 0:
        message = "playing the guide needs root (mount and network namespaces)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    # A PID namespace too: whatever the VPS started (nginx daemonizes) dies with it.
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
         "--mount-proc", "--", sys.executable, "-m", "tests.deploy.vps_sim", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=400)
    transcript = json.loads((tmp_path / "transcript.json").read_text())
    lines = []
    for step in transcript:
        if "error" in step:
            lines.append(step["error"])
        elif "guide" in step:
            lines.append(f"$ {step['guide']}    ({step['how']})")
        else:
            lines.append(f"    [{step['rc']}] {step['how'][:90]} | {step['command'][:80]}")
            if step["rc"] not in (0, None):
                lines.append(step["stdout"] + step["stderr"])
    report = "\n".join(lines)
    print(report)  # shown by pytest on failure (and with -s)
    assert proc.returncode == 0, f"{report}\n{proc.stderr[-3000:]}"
    assert [s["guide"] for s in transcript if "guide" in s] == guide.commands()

    calls, families = unit.traced((tmp_path / "syscalls.trace").read_text(errors="replace"))
    assert len(calls) > 40, sorted(calls)
    refused = calls - unit.allowed_syscalls(unit.service(), tool("systemd-analyze"))
    assert not refused, f"system calls the unit's filter would refuse: {sorted(refused)}"
    # Every family the unit allows is one the gateway uses, and no other.
    allowed_families = set(unit.one(unit.service(), "RestrictAddressFamilies").split())
    assert families == allowed_families, families ^ allowed_families
    shutil.rmtree(tmp_path / "overlay", ignore_errors=True)
