"""bench.load
~~~~~~~~~~~~~
Driving load from outside the measured processes, and charging their CPU.

``hey`` (Debian package) generates the throughput loads; ``bench.client``
(a Python process of its own) measures latency with µs resolution and holds
concurrent streams. CPU is read from ``/proc/<pid>/stat`` (utime + stime, all
threads) of the processes under test, before and after a load.
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

from .procs import ROOT, sample, sample_all


def have_hey() -> bool:
    return shutil.which("hey") is not None


def hey(url: str, body_file, headers: dict, n: int, c: int, timeout: int = 120) -> dict:
    """Run ``hey``; returns the status counts, errors and wall seconds."""
    cmd = ["hey", "-n", str(n), "-c", str(c), "-m", "POST", "-D", str(body_file),
           "-T", "application/json", "-t", str(timeout)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=timeout + 60).stdout
    statuses = {int(code): int(count) for code, count in
                re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    errors = 0
    m = re.search(r"Error distribution:(.*)", out, re.S)
    if m:
        errors = sum(int(x) for x in re.findall(r"\[(\d+)\]", m.group(1)))
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    return {"statuses": statuses, "errors": errors,
            "seconds": float(total.group(1)) if total else None}


def cpu_of(pids, fn):
    """Run *fn*; return (its result, CPU seconds the *pids* used meanwhile)."""
    before = sample_all(pids)
    result = fn()
    after = sample_all(pids)
    return result, after.cpu - before.cpu


def client(*args: str, timeout: float = 300) -> dict:
    cmd = [sys.executable, "-m", "bench.client", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.client failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def _header_args(headers: dict) -> list[str]:
    out = []
    for k, v in headers.items():
        out += ["--header", f"{k}: {v}"]
    return out


def latency(url: str, body_file, headers: dict, n: int, warmup: int = 50) -> dict:
    """p50/p99 of the total time and of the time to first byte, in µs."""
    res = client("latency", "--url", url, "--body", str(body_file), "--n", str(n),
                 "--warmup", str(warmup), *_header_args(headers))
    tot, first = sorted(res["total_us"]), sorted(res["ttfb_us"])
    pick = (lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None)
    return {"p50_us": statistics.median(tot) if tot else None, "p99_us": pick(tot, 0.99),
            "ttfb_p50_us": statistics.median(first) if first else None,
            "ttfb_p99_us": pick(first, 0.99), "statuses": res["statuses"],
            "errors": res["errors"], "tail": res["last_body_tail"]}


def streams(url: str, body_file, headers: dict, k: int, pids=(), timeout: float = 90) -> dict:
    """Open *k* streams at once; sample the RSS of *pids* meanwhile (peak)."""
    base = sum(sample(p).rss for p in pids)
    peak = [base, 0]
    stop = threading.Event()

    def watch():
        while not stop.wait(0.2):
            s = sample_all(pids)
            if s.rss > peak[0]:
                peak[0] = s.rss
            peak[1] = max(peak[1], s.threads)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        res = client("streams", "--url", url, "--body", str(body_file), "--k", str(k),
                     "--timeout", str(timeout), *_header_args(headers), timeout=timeout + 60)
    finally:
        stop.set()
        t.join()
    res["rss_base"] = base
    res["rss_peak"] = peak[0]
    res["threads_peak"] = peak[1]
    held = res["held_at_once"] or 1
    res["rss_per_stream"] = (peak[0] - base) / held if pids else None
    return res


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def wait_idle(pids, seconds: float = 0.3, limit: float = 5.0) -> None:
    """Wait until *pids* stop burning CPU (a previous load's tail), bounded."""
    deadline = time.monotonic() + limit
    last = sample_all(pids).cpu
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = sample_all(pids).cpu
        if now - last < 0.02:
            return
        last = now
