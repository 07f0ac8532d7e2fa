"""bench.websockets
~~~~~~~~~~~~~~~~~~~~
``python -m bench.websockets`` (part of ``make bench``): how many open Codex-style
WebSockets the shipped config holds, and the RSS each costs.

Codex CLI keeps one WebSocket open for the whole life of a ``codex exec`` process,
between turns and during tool runs, and each open socket holds a gunicorn worker
thread. The client (its own process, asyncio) opens K sockets at once; each sends
the prewarm frame Codex sends first and waits for its ``response.completed`` (the
gateway answers it without an upstream request), then all stay open and idle for
``--hold`` seconds, and then each sends a second prewarm: a socket is *held* when
both were answered. The workers' RSS and threads are sampled meanwhile; RSS per
socket is (peak − before) / held. Results: stdout, ``bench/out/websockets.md`` and
``bench/out/websockets.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gateway.config import ServerConfig

from .procs import CLIENT_KEY, OUT, ROOT, Gateway, sample_all

SHIPPED = ServerConfig().threads

PREWARM = {"type": "response.create", "model": "gpt-5-codex", "generate": False,
           "stream": True, "store": False, "input": [{"type": "message", "role": "developer",
                                                      "content": [{"type": "input_text",
                                                                   "text": "bench"}]}]}


# -- the client (its own process) -------------------------------------------------------

async def _prewarm(ws, timeout: float) -> bool:
    await ws.send(json.dumps(PREWARM))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame.get("type") == "response.completed":
            return True
        if frame.get("type") == "error":
            return False


async def _one(url, rec, opened, release, timeout):
    from websockets.asyncio.client import connect
    t0 = time.monotonic()
    try:
        async with connect(url, additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"},
                           open_timeout=timeout, ping_interval=None, compression=None,
                           close_timeout=2) as ws:
            rec["first"] = await _prewarm(ws, timeout)
            rec["first_ms"] = (time.monotonic() - t0) * 1000
            opened.release()
            await release.wait()
            rec["second"] = await _prewarm(ws, timeout)
    except Exception as exc:  # noqa: BLE001 - counted, never fatal
        rec["error"] = type(exc).__name__
        opened.release()


async def _sockets(url, k, hold, timeout):
    recs = [{"first": False, "second": False, "first_ms": None, "error": None} for _ in range(k)]
    opened = asyncio.Semaphore(0)
    release = asyncio.Event()
    tasks = [asyncio.create_task(_one(url, recs[i], opened, release, timeout)) for i in range(k)]

    async def all_opened():
        for _ in range(k):
            await opened.acquire()
    try:
        await asyncio.wait_for(all_opened(), timeout)
    except asyncio.TimeoutError:
        pass
    print("open", flush=True)  # the parent samples RSS now
    await asyncio.sleep(hold)
    release.set()
    await asyncio.gather(*tasks)
    errors: dict = {}
    for r in recs:
        if r["error"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    firsts = sorted(r["first_ms"] for r in recs if r["first_ms"] is not None)
    return {"requested": k, "answered_first": sum(r["first"] for r in recs),
            "held": sum(r["first"] and r["second"] for r in recs), "errors": errors,
            "prewarm_ms_p50": firsts[len(firsts) // 2] if firsts else None,
            "prewarm_ms_max": firsts[-1] if firsts else None}


def client_main(args) -> None:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.k + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.k + 1024), hard))
    print(json.dumps(asyncio.run(_sockets(args.url, args.k, args.hold, args.timeout))))


# -- the measurement ----------------------------------------------------------------------

def measure(gw: Gateway, k: int, hold: float, timeout: float) -> dict:
    pids = gw.workers()
    time.sleep(0.5)
    before = sample_all(pids)
    peak = {"rss": before.rss, "threads": before.threads}
    stop = threading.Event()

    def watch():
        while not stop.wait(0.2):
            s = sample_all(pids)
            peak["rss"] = max(peak["rss"], s.rss)
            peak["threads"] = max(peak["threads"], s.threads)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cmd = [sys.executable, "-m", "bench.websockets", "client", "--url",
           gw.url.replace("http://", "ws://") + "/v1/responses", "--k", str(k),
           "--hold", str(hold), "--timeout", str(timeout)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        lines = proc.communicate(timeout=timeout * 3 + hold + 60)[0].splitlines()
    finally:
        stop.set()
        watcher.join()
    res = json.loads(lines[-1])
    res.update(rss_before=before.rss, rss_peak=peak["rss"], threads_before=before.threads,
               threads_peak=peak["threads"])
    res["rss_per_socket_kb"] = ((peak["rss"] - before.rss) / res["held"] / 1024
                                if res["held"] else None)
    return res


def report(results: dict) -> str:
    rows = [f"| open WebSockets requested, 2 workers, shipped config ({SHIPPED} threads/worker) | held "
            "(both prewarms answered) | errors | prewarm max (ms) | RSS per open socket (KB) "
            "| worker threads before → peak |", "|---|---|---|---|---|---|"]
    for k, r in results["runs"].items():
        rss = f"{r['rss_per_socket_kb']:.1f}" if r["rss_per_socket_kb"] is not None else "—"
        errors = ", ".join(f"{n} {name}" for name, n in r["errors"].items()) or "0"
        rows.append(f"| {k} | {r['held']} | {errors} | "
                    f"{r['prewarm_ms_max'] or 0:.0f} | {rss} | "
                    f"{r['threads_before']} → {r['threads_peak']} |")
    meta = results["meta"]
    return "\n".join(rows) + (f"\n\nHold {meta['hold']} s idle between the prewarms; "
                              f"{meta['date']}; run took {meta['seconds']} s.\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    c = sub.add_parser("client")
    c.add_argument("--url", required=True)
    c.add_argument("--k", type=int, required=True)
    c.add_argument("--hold", type=float, default=5.0)
    c.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--sockets", default="256,1000",
                        help="comma-separated socket counts to open at once")
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    if args.cmd == "client":
        client_main(args)
        return 0
    t0 = time.monotonic()
    results = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                        "hold": args.hold}, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="cgw-bench-ws-") as tmp:
        for k in [int(x) for x in args.sockets.split(",") if x.strip()]:
            # The upstream is never contacted: prewarms are answered by the gateway.
            with Gateway(Path(tmp), "http://127.0.0.1:9", root=args.root,
                         name=f"ws-{k}") as gw:
                print(f"websockets: {k} open sockets", file=sys.stderr, flush=True)
                results["runs"][str(k)] = measure(gw, k, args.hold, args.timeout)
    results["meta"]["seconds"] = round(time.monotonic() - t0, 1)
    table = report(results)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "websockets.md").write_text(table)
    (OUT / "websockets.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
