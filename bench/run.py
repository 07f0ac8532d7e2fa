"""bench.run
~~~~~~~~~~~~
``python -m bench.run`` (``make bench``): what the gateway costs, measured side
by side in one run on this machine, against the same upstream.

Three paths to the same upstream answers (captured from the fake upstream):

* direct      client -> upstream
* nginx-only  client -> nginx (pure pass-through proxy, SSE settings) -> upstream
* gateway     client -> gunicorn + gateway (shipped config) -> upstream

Two upstreams: nginx serving the captured answers as static files (as fast as
an upstream gets; a long answer arrives in 64 KB bursts) and ``bench.paced``,
which streams one event per write with a pause, as a model does. Every figure
is the median of ``--repeats`` runs. Results: the table on stdout and in
``bench/out/results.md``, raw numbers in ``bench/out/results.json``, the plot
in ``bench/out/bench.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import bodies, load
from .procs import (CLIENT_KEY, OUT, ROOT, Gateway, PacedUpstream, proxy_nginx,
                    upstream_nginx)

UP_PATH = "/backend-api/codex/responses"
PATHS = {"responses": "/v1/responses", "chat": "/v1/chat/completions"}
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
HOLD_GAP_MS = 80      # pause between events of a held stream (73 events: ~6 s)
PACED_GAP_MS = 1      # pause between events of the paced per-event run


def request_files(directory: Path) -> dict:
    """The client request bodies, one file each (hey and bench.client read files)."""
    msgs = [{"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Say hello."}]
    reqs = {
        ("responses", False): {"model": "gpt-5-codex",
                               "instructions": "You are a concise assistant.",
                               "input": "Say hello.", "stream": False},
        ("chat", False): {"model": "gpt-5-codex", "messages": msgs},
    }
    reqs[("responses", True)] = dict(reqs[("responses", False)], stream=True)
    reqs[("chat", True)] = dict(reqs[("chat", False)], stream=True)
    out = {}
    for (endpoint, stream), body in reqs.items():
        path = directory / f"{endpoint}-{'stream' if stream else 'json'}.json"
        path.write_text(json.dumps(body))
        out[(endpoint, stream)] = path
    return out


class Bench:
    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.repeats = args.repeats
        self.quick = args.quick
        self.results: dict = {"meta": {}, "direct": {}, "nginx": {}, "gateways": {}}
        self.log_lines: list[str] = []

    def log(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {msg}"
        self.log_lines.append(line)
        print(line, flush=True)

    # -- measurements ------------------------------------------------------------
    def latency(self, url, body_file, headers, n=None) -> dict:
        n = n or (300 if self.quick else 600)
        runs = [load.latency(url, body_file, headers, n) for _ in range(self.repeats)]
        bad = [r for r in runs if set(r["statuses"]) != {"200"} or r["errors"]]
        return {
            "p50_ms": load.median([r["p50_us"] for r in runs]) / 1000,
            "p99_ms": load.median([r["p99_us"] for r in runs]) / 1000,
            "ttfb_p50_ms": load.median([r["ttfb_p50_us"] for r in runs]) / 1000,
            "ttfb_p99_ms": load.median([r["ttfb_p99_us"] for r in runs]) / 1000,
            "runs_p50_ms": [round(r["p50_us"] / 1000, 3) for r in runs],
            "failed_runs": len(bad), "tail": runs[-1]["tail"][-120:],
        }

    def cpu_per_request(self, pids, url, body_file, headers) -> dict:
        # One connection, one request at a time: gunicorn hands keep-alive connections
        # to its workers unevenly, and several per worker add GIL contention that is
        # not the gateway's own cost (measured beside: c=4 costs 10-40 % more).
        n, c = (1000 if self.quick else 2000), 1
        load.hey(url, body_file, headers, 200, c)  # warm-up: threads, pools, caches
        per, ok = [], True
        for _ in range(self.repeats):
            load.wait_idle(pids)
            res, cpu = load.cpu_of(pids, lambda: load.hey(url, body_file, headers, n, c))
            ok = ok and res["statuses"] == {200: n}
            per.append(cpu / n * 1000)
        return {"ms": load.median(per), "runs_ms": [round(x, 3) for x in per], "all_200": ok,
                "requests": n, "concurrency": c}

    def cpu_per_event(self, pids, url, body_file, headers, events, paced: bool) -> dict:
        if paced:
            n, c = (8 if self.quick else 16), 8
            headers = dict(headers, **{"x-codex-bench": "long",
                                       "x-codex-bench-gap": str(PACED_GAP_MS)})
        else:
            n, c = (16 if self.quick else 32), 2
            headers = dict(headers, **{"x-codex-bench": "long"})
        load.hey(url, body_file, headers, 2, 2)
        per, ok = [], True
        for _ in range(self.repeats):
            load.wait_idle(pids)
            res, cpu = load.cpu_of(pids, lambda: load.hey(url, body_file, headers, n, c))
            ok = ok and res["statuses"] == {200: n}
            per.append(cpu / (n * events) * 1e6)
        return {"us": load.median(per), "runs_us": [round(x, 2) for x in per], "all_200": ok,
                "streams": n, "events_per_stream": events}

    def capacity(self, url, body_file, headers, k, pids=()) -> dict:
        headers = dict(headers, **{"x-codex-bench": "hold",
                                   "x-codex-bench-gap": str(HOLD_GAP_MS)})
        res = load.streams(url, body_file, headers, k, pids=pids)
        if res.get("rss_per_stream") is not None:
            res["rss_per_stream_kb"] = res["rss_per_stream"] / 1024
        return res

    # -- the run -------------------------------------------------------------------
    def run(self) -> dict:
        self.t0 = time.monotonic()
        info = bodies.prepare(self.tmp / "bodies")
        files = request_files(self.tmp)
        long_events = info["long"]["events"]
        self.results["meta"] = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                       f"Linux {platform.release()}",
            "python": platform.python_version(),
            "repeats": self.repeats, "quick": self.quick,
            "bodies": info, "root": str(self.args.root),
            "json": "orjson" if _have("orjson") else "json (orjson not installed)",
        }
        self.log(f"captured upstream answers: small {info['small']['events']} events, "
                 f"long {long_events} events ({info['long']['deltas']} deltas)")
        with upstream_nginx(self.tmp, self.tmp / "bodies", info["headers"]) as static, \
                PacedUpstream(self.tmp / "bodies", info["headers"]) as paced, \
                proxy_nginx(self.tmp, {"static": static.port, "paced": paced.port}) as proxy:
            self.measure_plain("direct", static.url, paced.url, files, long_events, None)
            self.measure_plain("nginx", proxy.urls["static"], proxy.urls["paced"], files,
                               long_events, proxy)
            variants = [("gthread", {}), ("gthread-keepalive-off", {"keepalive": 0})]
            if self.args.gevent and gevent_available():
                variants.append(("gevent", {"worker_class": "gevent"}))
            elif self.args.gevent:
                self.log("gevent is not installed: skipped (pip install gevent)")
            for name, kw in variants:
                self.measure_gateway(name, kw, static.url, paced.url, files, long_events)
        self.results["meta"]["seconds"] = round(time.monotonic() - self.t0, 1)
        return self.results

    def measure_plain(self, name, static_url, paced_url, files, long_events, nginx) -> None:
        r = self.results[name]
        body = files[("responses", False)]
        self.log(f"{name}: latency")
        r["latency"] = self.latency(static_url + UP_PATH, body, {})
        if nginx is not None:
            pids = nginx.workers()
            self.log(f"{name}: CPU per request and per event")
            r["cpu_request"] = self.cpu_per_request(pids, static_url + UP_PATH, body, {})
            r["cpu_event_burst"] = self.cpu_per_event(pids, static_url + UP_PATH, body, {},
                                                      long_events, paced=False)
            r["cpu_event_paced"] = self.cpu_per_event(pids, paced_url + UP_PATH, body, {},
                                                      long_events, paced=True)
        self.log(f"{name}: {self.args.streams} held streams")
        r["capacity"] = {str(self.args.streams): self.capacity(
            paced_url + UP_PATH, body, {}, self.args.streams,
            pids=nginx.workers() if nginx is not None else ())}

    def gateway(self, upstream_url, **kw) -> Gateway:
        return Gateway(self.tmp, upstream_url, root=self.args.root, **kw).start()

    def measure_gateway(self, name, kw, static_url, paced_url, files, long_events) -> None:
        r = self.results["gateways"].setdefault(name, {"config": {k: v for k, v in kw.items()}})
        full = name != "gthread-keepalive-off"
        with self.gateway(static_url, **kw) as gw:
            pids = gw.workers()
            for endpoint, path in PATHS.items():
                e = r.setdefault(endpoint, {})
                url = gw.url + path
                if full:
                    self.log(f"{name} {endpoint}: latency (JSON, stream)")
                    e["latency"] = self.latency(url, files[(endpoint, False)], AUTH)
                    e["stream"] = self.latency(url, files[(endpoint, True)], AUTH)
                    self.log(f"{name} {endpoint}: CPU per request")
                    e["cpu_request"] = self.cpu_per_request(pids, url, files[(endpoint, False)],
                                                            AUTH)
                self.log(f"{name} {endpoint}: CPU per event (burst upstream)")
                e["cpu_event_burst"] = self.cpu_per_event(pids, url, files[(endpoint, True)],
                                                          AUTH, long_events, paced=False)
        with self.gateway(paced_url, **kw) as gw:
            pids = gw.workers()
            for endpoint, path in PATHS.items():
                self.log(f"{name} {endpoint}: CPU per event (paced upstream)")
                r[endpoint]["cpu_event_paced"] = self.cpu_per_event(
                    pids, gw.url + path, files[(endpoint, True)], AUTH, long_events, paced=True)
        if not full:
            return
        capacity = r.setdefault("capacity", {})
        for label in ("shipped",):
            with self.gateway(paced_url, **kw) as gw:
                load.latency(gw.url + PATHS["responses"], files[("responses", False)], AUTH, 5, 2)
                self.log(f"{name} ({label}): {self.args.streams} held streams")
                capacity[label] = self.capacity(gw.url + PATHS["responses"],
                                                files[("responses", True)], AUTH,
                                                self.args.streams, pids=gw.workers())


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def gevent_available() -> bool:
    try:
        import gevent  # noqa: F401
    except ImportError:
        return False
    return True


def check_tools() -> list[str]:
    missing = []
    if not load.have_hey():
        missing.append("hey (apt-get install hey)")
    from .procs import nginx_binary
    if not nginx_binary():
        missing.append("nginx (apt-get install nginx-light)")
    return missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests per run")
    parser.add_argument("--streams", type=int, default=1000, help="streams held at once")
    parser.add_argument("--no-gevent", dest="gevent", action="store_false")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="gateway source tree to measure (default: this checkout)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    # A SIGTERM unwinds like Ctrl-C, so every process started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    missing = check_tools()
    if missing or not gevent_available() or not _have("matplotlib"):
        subprocess.run(["sh", str(ROOT / "bench" / "install.sh"), sys.executable], check=False)
        import importlib
        importlib.invalidate_caches()
        missing = check_tools()
    if missing:
        print("bench: missing " + ", ".join(missing) + " (bench/install.sh installs them)",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codex-gateway-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        results = bench.run()
    from . import report
    table = report.table(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / "results.md").write_text(table + "\n")
    print()
    print(table)
    try:
        png = report.plot(results, args.out / "bench.png")
        print(f"\nplot: {png}")
    except ImportError:
        print("\nplot skipped: matplotlib is not installed (pip install matplotlib)")
    print(f"raw numbers: {args.out / 'results.json'}; took {results['meta']['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
