"""bench.upstream_load
~~~~~~~~~~~~~~~~~~~~~~~
``python -m bench.upstream_load`` (part of ``make bench``): the shipped default
upstream transport (``codex_transport = "auto"``: the backend's WebSocket) and
the HTTP transport side by side under load, through the gateway (2 workers)
against the fake backend (``tests.fakes.codex_upstream --websocket --fast``).

1. **Load**: 32 concurrent clients (threads, a kept-alive connection each, SSE
   answers read whole), for two shapes: *one conversation* (every request has
   the same ``prompt_cache_key``: parallel tool calls and sub-agents sharing a
   session) and *a new conversation per request* (``codex exec``, one-shot SDK
   calls). Per transport and shape: requests/s, the gateway's CPU per request
   (its workers' utime + stime, ``/proc``) and the new upstream WebSockets per
   request (the fake counts accepted upgrades).
2. **First turn with a slow upgrade**: the fake answers each WebSocket upgrade
   after ``--upgrade-delay`` (50 ms: a TCP + TLS + upgrade on the internet path);
   one new conversation at a time, the time to the first SSE byte per transport.

Both gateways run at once and every repetition measures them one after the
other, so load from elsewhere on the machine hits both alike: compare the
ratios, which are the point. Prints a markdown table; writes
``bench/out/upstream_load.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import load
from .procs import ROOT, FakeUpstream, Gateway, client_headers, publish

MODEL = "gpt-5-codex"
TRANSPORTS = ("auto", "http")   # the shipped default first
SHAPES = ("one conversation", "a new conversation per request")


def _body(key: str) -> bytes:
    return json.dumps({"model": MODEL, "input": "hi [[say:ok]]", "stream": True,
                       "prompt_cache_key": key}).encode()


class _Client:
    """One kept-alive connection; ``post`` returns the seconds to the first byte."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.headers = client_headers()

    def post(self, body: bytes) -> float:
        started = time.perf_counter()
        self.conn.request("POST", "/v1/responses", body=body, headers=self.headers)
        resp = self.conn.getresponse()
        first = resp.read(1)
        ttfb = time.perf_counter() - started
        rest = resp.read()
        if resp.status != 200 or b"response.completed" not in first + rest:
            raise RuntimeError(f"{resp.status}: {(first + rest)[-300:]!r}")
        return ttfb

    def close(self) -> None:
        self.conn.close()


def drive(url: str, concurrency: int, per_client: int, shape: str, tag: str) -> dict:
    """*concurrency* clients × *per_client* requests; wall seconds and failures."""
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1)

    def client(c: int) -> None:
        cl = _Client(url)
        try:
            start.wait()
            for i in range(per_client):
                key = f"{tag}-one" if shape == SHAPES[0] else f"{tag}-{c}-{i}"
                cl.post(_body(key))
        except Exception as exc:  # noqa: BLE001 - reported, counted
            errors.append(str(exc)[:200])
        finally:
            cl.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return {"seconds": time.perf_counter() - began, "errors": errors}


def upgrades(fake) -> int:
    return sum(1 for h in fake.control("GET", "/_fake/handshakes") if h["status"] == 101)


def measure_load(gw, fake, shape: str, concurrency: int, per_client: int, tag: str) -> dict:
    n = concurrency * per_client
    load.wait_idle(gw.workers())
    before = upgrades(fake)
    res, cpu = load.cpu_of(gw.workers(),
                           lambda: drive(gw.url, concurrency, per_client, shape, tag))
    return {"rps": n / res["seconds"], "cpu_ms": cpu / n * 1000,
            "sockets_per_request": (upgrades(fake) - before) / n,
            "errors": len(res["errors"]), "first_error": (res["errors"] or [None])[0]}


def first_turns(gw, n: int, tag: str) -> list[float]:
    """*n* new conversations one after another, each on a new connection: TTFB (ms)."""
    out = []
    for i in range(n):
        cl = _Client(gw.url)
        try:
            out.append(cl.post(_body(f"{tag}-{i}")) * 1000)
        finally:
            cl.close()
        time.sleep(0.02)  # the next one starts after this one's background work
    return out


def run(args) -> dict:
    res: dict = {"concurrency": args.concurrency, "per_client": args.per_client,
                 "repeats": args.repeats, "upgrade_delay_ms": args.upgrade_delay * 1000,
                 "load": {t: {s: [] for s in SHAPES} for t in TRANSPORTS},
                 "first_turn": {t: [] for t in TRANSPORTS}}
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp, \
            FakeUpstream("--websocket", "--fast") as fake:
        work = Path(tmp)
        gws = {t: Gateway(work, fake.url, name=f"gw-load-{t}", root=args.root, extra_env={
            "CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT": t}).start() for t in TRANSPORTS}
        try:
            for t, gw in gws.items():  # warm-up: imports, pools, threads
                drive(gw.url, args.concurrency, 3, SHAPES[1], f"warm-{t}")
            for r in range(args.repeats):
                order = list(gws.items())[::1 if r % 2 == 0 else -1]  # neither always first
                for shape in SHAPES:
                    for t, gw in order:
                        fake.control("POST", "/_fake/reset")
                        res["load"][t][shape].append(measure_load(
                            gw, fake, shape, args.concurrency, args.per_client, f"{t}-{r}"))
            fake.control("POST", "/_fake/config", {"upgrade_delay": args.upgrade_delay})
            for r in range(args.repeats):
                for t, gw in list(gws.items())[::1 if r % 2 == 0 else -1]:
                    res["first_turn"][t].append(statistics.median(
                        first_turns(gw, args.first_turns, f"first-{t}-{r}")))
            fake.control("POST", "/_fake/config", {"upgrade_delay": 0})
        finally:
            for gw in gws.values():
                gw.stop()
    return res


def _range(values, fmt="{:.2f}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(statistics.median(values)) + " (" + fmt.format(lo) + "–" + \
        fmt.format(hi) + ")"


def table(res: dict) -> str:
    c = res["concurrency"]
    rows = [f"| {c} concurrent clients | default (auto: WebSocket) | HTTP transport | "
            "default / HTTP |", "|---|---|---|---|"]
    for shape in SHAPES:
        a, h = res["load"]["auto"][shape], res["load"]["http"][shape]
        for key, label, fmt in (("rps", "requests/s", "{:.0f}"),
                                ("cpu_ms", "CPU per request (ms)", "{:.3f}"),
                                ("sockets_per_request", "new upstream WebSockets per request",
                                 "{:.3f}")):
            ratio = [x[key] / y[key] for x, y in zip(a, h) if y[key]]
            rows.append(f"| {shape}: {label} | {_range([x[key] for x in a], fmt)} | "
                        f"{_range([x[key] for x in h], fmt)} | "
                        f"{_range(ratio, '{:.2f}') if ratio else '–'} |")
        errors = sum(x["errors"] for x in a + h)
        if errors:
            rows.append(f"| {shape}: failed requests | {sum(x['errors'] for x in a)} | "
                        f"{sum(x['errors'] for x in h)} | |")
    fa, fh = res["first_turn"]["auto"], res["first_turn"]["http"]
    rows.append(f"| a new conversation's time to first byte, upgrade takes "
                f"{res['upgrade_delay_ms']:.0f} ms (ms, median) | {_range(fa)} | {_range(fh)} | "
                f"{_range([x - y for x, y in zip(fa, fh)], '{:+.2f}')} ms |")
    rows.append(f"\n{res['repeats']} repetitions, median (range); "
                f"{c} × {res['per_client']} requests per run.")
    return "\n".join(rows) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--per-client", type=int, default=100, help="requests per client")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--upgrade-delay", type=float, default=0.05)
    parser.add_argument("--first-turns", type=int, default=15,
                        help="new conversations per transport and repetition")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="gateway source tree to measure (default: this checkout)")
    args = parser.parse_args(argv)
    res = run(args)
    res["root"] = str(args.root)
    publish("upstream_load", table(res), res)


if __name__ == "__main__":
    main()
