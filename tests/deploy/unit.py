"""tests.deploy.unit
~~~~~~~~~~~~~~~~~~~
The shipped systemd unit as data, and its command lines as systemd reads them.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "codex-gateway.service"


def parse(text: str | None = None) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values, in order]}}``; keys may repeat, as in systemd."""
    text = UNIT.read_text() if text is None else text
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def service(text: str | None = None) -> dict[str, list[str]]:
    return parse(text)["Service"]


def one(svc: dict, key: str, default: str | None = None) -> str | None:
    values = svc.get(key)
    return values[-1] if values else default


def argv(command_line: str, **variables: str) -> list[str]:
    """A unit's Exec*= value as systemd splits it: shell-like quoting, ``$$`` is ``$``,
    ``$NAME`` of the given *variables* (``MAINPID``) substituted."""
    words = []
    for word in shlex.split(command_line):
        for name, value in variables.items():
            word = word.replace("${%s}" % name, value)
            if word == f"${name}":
                word = value
        words.append(word.replace("$$", "$"))
    return words


def environment(svc: dict) -> dict[str, str]:
    env = {}
    for value in svc.get("Environment", []):
        for item in shlex.split(value):
            key, _, val = item.partition("=")
            env[key] = val
    return env


def seconds(value: str) -> float:
    """A systemd time span ('930', '930s', '15min', '2s') in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for part in value.split():
        num = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        total += float(num) * units[part[len(num):]]
    return total


def _group(analyze: str, name: str, seen: set) -> set[str]:
    out = subprocess.run([analyze, "syscall-filter", name], capture_output=True, text=True,
                         check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            if line not in seen:
                seen.add(line)
                calls |= _group(analyze, line, seen)
        else:
            calls.add(line)
    return calls


def allowed_syscalls(svc: dict, analyze: str = "systemd-analyze") -> set[str]:
    """The unit's SystemCallFilter= lines as systemd combines them: the first is an allow
    list, each later ``~`` line takes from it (groups from `systemd-analyze syscall-filter`)."""
    allowed: set[str] = set()
    for i, value in enumerate(svc["SystemCallFilter"]):
        deny = value.startswith("~")
        calls: set[str] = set()
        for name in value.lstrip("~").split():
            calls |= _group(analyze, name, set()) if name.startswith("@") else {name}
        assert deny or i == 0, "only the first filter line may be an allow list"
        allowed = allowed - calls if deny else calls
    return allowed


_CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)(?:\(| resumed>)")
_FAMILY = re.compile(r"\bsocket\((AF_[A-Z0-9]+)")


def traced(text: str) -> tuple[set[str], set[str]]:
    """System calls and socket address families in an `strace -f` output."""
    calls, families = set(), set()
    for line in text.splitlines():
        m = _CALL.match(line)
        if m:
            calls.add(m.group(1))
        families.update(_FAMILY.findall(line))
    return calls, families
