"""tests.deploy.sandbox
~~~~~~~~~~~~~~~~~~~~~~
Run a command the way the shipped unit runs it, with the sandbox settings that
Linux can impose without systemd, read from the unit file itself:

====================================  ==============================================
unit setting                          imposed here as
====================================  ==============================================
``User=``, ``Group=``                 setgroups/setgid/setuid (supplementary groups
                                      of the user), ``HOME``/``USER``/``LOGNAME``
``Environment=``                      the only variables, plus systemd's own
``StateDirectory=``, ``…Mode=``       /var/lib/NAME owned by the user, that mode,
                                      the only writable place besides /tmp
``UMask=``                            umask
``ProtectSystem=strict``              every mount read-only (bind remount)
``ProtectHome=yes``                   empty, inaccessible /home, /root, /run/user
``PrivateTmp=yes``                    fresh tmpfs on /tmp and /var/tmp
``PrivateDevices=yes``                a /dev with null, zero, full, random,
                                      urandom, tty, shm only
``ProtectKernelTunables=yes``         /proc/sys and /sys read-only
``NoNewPrivileges=yes``               prctl(PR_SET_NO_NEW_PRIVS)
``CapabilityBoundingSet=``            every capability dropped from the bounding set
``MemoryDenyWriteExecute=yes``        prctl(PR_SET_MDWE, REFUSE_EXEC_GAIN) (Linux
                                      6.3+), what systemd's filter enforces
``LimitNOFILE=``                      setrlimit
====================================  ==============================================

The system-call filter and the address families are checked separately against
the calls the gateway really makes (tests/deploy/test_systemd.py, strace).

Usage, as root, in a mount namespace of its own::

    unshare --mount --propagation private -- python -m tests.deploy.sandbox UNIT -- CMD...
"""
from __future__ import annotations

import ctypes
import grp
import os
import pwd
import resource
import subprocess
import sys
from pathlib import Path

from tests.deploy import unit as unitfile

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}, {arg}): {os.strerror(err)}")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _yes(svc, key) -> bool:
    return (unitfile.one(svc, key) or "no").lower() in ("yes", "true", "1", "on", "strict")


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        points.append(point)
    return points


def apply_mounts(svc) -> dict:
    """The filesystem view of the unit. Returns what was done, for the record."""
    done = {}
    user = unitfile.one(svc, "User")
    keep_rw = []
    for name in svc.get("StateDirectory", []):
        path = f"/var/lib/{name}"
        os.makedirs(path, exist_ok=True)
        if user:
            pw = pwd.getpwnam(user)
            group = unitfile.one(svc, "Group") or grp.getgrgid(pw.pw_gid).gr_name
            os.chown(path, pw.pw_uid, grp.getgrnam(group).gr_gid)
        os.chmod(path, int(unitfile.one(svc, "StateDirectoryMode", "0755"), 8))
        _mount("--bind", path, path)
        keep_rw.append(path)
        done["StateDirectory"] = path
    if _yes(svc, "PrivateTmp"):
        for path in ("/tmp", "/var/tmp"):
            _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", path)
            keep_rw.append(path)
        done["PrivateTmp"] = True
    if _yes(svc, "ProtectHome"):
        for path in ("/home", "/root", "/run/user"):
            if os.path.isdir(path):
                _mount("-t", "tmpfs", "-o", "mode=000,ro,nosuid,nodev,noexec", "tmpfs", path)
        done["ProtectHome"] = True
    if _yes(svc, "PrivateDevices"):
        old = "/run/.sandbox-dev"
        os.makedirs(old, exist_ok=True)
        _mount("--rbind", "/dev", old)
        _mount("-t", "tmpfs", "-o", "mode=755,nosuid,noexec", "tmpfs", "/dev")
        for dev in DEVICES:
            Path(f"/dev/{dev}").touch()
            _mount("--bind", f"{old}/{dev}", f"/dev/{dev}")
        os.makedirs("/dev/shm")
        _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", "/dev/shm")
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"/dev/{name}")
        subprocess.run(["umount", "-l", old], check=True)
        keep_rw += ["/dev", "/dev/shm"] + [f"/dev/{d}" for d in DEVICES]
        done["PrivateDevices"] = sorted(os.listdir("/dev"))
    if _yes(svc, "ProtectKernelTunables"):
        _mount("--bind", "/proc/sys", "/proc/sys")
        _mount("-o", "remount,bind,ro", "/proc/sys")
        _mount("-o", "remount,bind,ro", "/sys")
        done["ProtectKernelTunables"] = True
    if (unitfile.one(svc, "ProtectSystem") or "").lower() == "strict":
        ro = []
        for point in _mount_points():
            if point in keep_rw or point == "/proc" or point.startswith(("/proc/", "/sys", "/dev")):
                continue
            if point in ("/home", "/root", "/run/user"):
                continue  # already empty and read-only
            _mount("-o", "remount,bind,ro", point)
            ro.append(point)
        done["ProtectSystem"] = ro
    return done


def drop(svc) -> dict:
    """Environment, user, umask, limits and the process restrictions; returns the env."""
    env = {"PATH": SYSTEMD_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")}
    if "NOTIFY_SOCKET" in os.environ:
        env["NOTIFY_SOCKET"] = os.environ["NOTIFY_SOCKET"]
    for name in svc.get("StateDirectory", []):
        env["STATE_DIRECTORY"] = f"/var/lib/{name}"
    env.update(unitfile.environment(svc))
    limit = unitfile.one(svc, "LimitNOFILE")
    if limit:
        soft, _, hard = limit.partition(":")
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(soft), int(hard or soft)))
    umask = unitfile.one(svc, "UMask")
    if umask:
        os.umask(int(umask, 8))
    if "CapabilityBoundingSet" in svc and not unitfile.one(svc, "CapabilityBoundingSet"):
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        for cap in range(last + 1):
            _prctl(PR_CAPBSET_DROP, cap)
    user = unitfile.one(svc, "User")
    if user:
        pw = pwd.getpwnam(user)
        gid = grp.getgrnam(unitfile.one(svc, "Group")).gr_gid if unitfile.one(svc, "Group") \
            else pw.pw_gid
        os.initgroups(user, gid)
        os.setgid(gid)
        os.setuid(pw.pw_uid)
        env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user, SHELL=pw.pw_shell)
    if _yes(svc, "NoNewPrivileges"):
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if _yes(svc, "MemoryDenyWriteExecute"):
        _prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)
    return env


def main(argv: list[str]) -> None:
    unit_path, sep, *command = argv
    assert sep == "--" and command, "usage: sandbox UNIT -- CMD..."
    svc = unitfile.service(Path(unit_path).read_text())
    done = apply_mounts(svc)
    print(f"sandbox: {done}", file=sys.stderr, flush=True)
    env = drop(svc)
    os.chdir("/")
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
