"""The README's *Try it* commands work as written (only the port is substituted)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.support import ROOT, free_port

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def test_try_it_commands(gateway_factory, tmp_path):
    if shutil.which("curl") is None:
        pytest.fail("curl is required by the README and the tests")
    try_it = section("## Try it")
    blocks = shell_blocks(try_it)
    assert "tests.fakes.codex_upstream --port 18001" in blocks[0]
    fake_port = free_port()
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.codex_upstream", "--port",
                             str(fake_port)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert fake.stdout.readline().startswith(b"ready")
        env = dict(re.findall(r"(CODEX_GATEWAY_\w+)=(\S+)", blocks[0]))
        env = {k: v.replace("18001", str(fake_port)) for k, v in env.items()}
        env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"] = str(ROOT / env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"])
        env["CODEX_GATEWAY_ACCOUNTS_STATE_DIR"] = str(tmp_path)
        gw = gateway_factory(env, workers=1)
        stream_cmd, chat_cmd = blocks[1], blocks[2]
        out = _run(stream_cmd, gw.port)
        assert "event: response.completed" in out and "Hello from the fake upstream." in out
        out = _run(chat_cmd, gw.port)
        assert '"object":"chat.completion"' in out and "Hello from the fake upstream." in out
    finally:
        fake.terminate()
        fake.wait(5)


def _run(cmd: str, port: int) -> str:
    cmd = cmd.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    started = time.time()
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert time.time() - started < 30
    return out.stdout
