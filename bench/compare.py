"""bench.compare
~~~~~~~~~~~~~~~~
``python -m bench.compare --before DIR``: this tree against another source tree
(DIR: a checkout of the commit before a change, e.g. ``git worktree add
/tmp/before <commit>``), side by side in one run on one machine, with the
shipped config and with ``[prefix]`` and ``[responses] store`` off (the work
both trees do alike, when DIR predates those features).

Figures, per gateway (gunicorn, shipped config, the HTTP transport to nginx
serving captured Codex answers, or ``bench.paced`` one event per write):

* **CPU per small request** (ms; JSON and streamed): the worker's utime +
  stime over ``--requests`` requests sent one at a time by ``hey``;
* **CPU per streamed event** (µs; a long answer, burst and paced upstream), as
  ``bench.run`` measures it, for ``/v1/responses`` and ``/v1/chat/completions``;
* **CPU per request under load** (ms; ``--no-load`` skips it): 32 concurrent
  clients on the HTTP transport (2 workers against the fake Codex backend), the
  two shapes of :mod:`bench.upstream_load` (one conversation; a new conversation
  per request), the setting issue 29 measured its 1.55 ms in.

Every repetition measures all gateways, alternating their order, so load from
elsewhere on the machine hits each alike: the medians (with their range) and
the ratio to the *before* column are the point, never one absolute figure.
Prints a markdown table; writes ``bench/out/compare.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from . import bodies, load
from .procs import ROOT, FakeUpstream, Gateway, PacedUpstream, publish, upstream_nginx
from .run import AUTH, PACED_GAP_MS, PATHS, request_files

FEATURES_OFF = {"CODEX_GATEWAY_RESPONSES_STORE": "false", "CODEX_GATEWAY_PREFIX_ENABLED": "false"}


def variants(before: Path) -> dict:
    return {
        "before": {"root": before, "env": {}},
        "after": {"root": ROOT, "env": {}},
        "before, features off": {"root": before, "env": FEATURES_OFF},
        "after, features off": {"root": ROOT, "env": FEATURES_OFF},
    }


def alternate(gws: dict, reps: int, measure) -> dict:
    """*measure(gw)* for every gateway, *reps* times, the order reversed every other time."""
    out = {name: [] for name in gws}
    for r in range(reps):
        order = list(gws.items()) if r % 2 == 0 else list(reversed(gws.items()))
        for name, gw in order:
            load.wait_idle(gw.workers())
            out[name].append(measure(gw))
    return out


def cpu_per(gw, path: str, body, headers: dict, n: int, c: int, scale: float) -> float | None:
    """The workers' CPU seconds for *n* requests (*c* at once), times *scale*; None
    when any answer was not a 200."""
    res, cpu = load.cpu_of(gw.workers(), lambda: load.hey(gw.url + path, body, headers, n, c))
    return round(cpu * scale, 3) if res["statuses"] == {200: n} else None


def _start(tmp: Path, url: str, found: dict, tag: str, workers: int) -> dict:
    return {name: Gateway(tmp, url, workers=workers, root=v["root"], name=f"{tag}-{i}",
                          extra_env=v["env"]).start()
            for i, (name, v) in enumerate(found.items())}


def per_request(tmp, url, found, files, args) -> dict:
    results = {}
    gws = _start(tmp, url, found, "req", 1)
    try:
        for endpoint in PATHS:
            for stream in (False, True):
                body = files[(endpoint, stream)]
                for gw in gws.values():
                    load.hey(gw.url + PATHS[endpoint], body, AUTH, 200, 1)  # warm-up

                key = f"CPU per request, {endpoint} {'stream' if stream else 'JSON'} (ms)"
                results[key] = alternate(gws, args.repeats, lambda gw: cpu_per(
                    gw, PATHS[endpoint], body, AUTH, args.requests, 1, 1000 / args.requests))
    finally:
        for gw in gws.values():
            gw.stop()
    return results


def per_event(tmp, url, found, files, events, paced: bool, args) -> dict:
    results = {}
    gws = _start(tmp, url, found, "paced" if paced else "burst", 2)
    try:
        for endpoint in PATHS:
            headers = dict(AUTH, **{"x-codex-bench": "long"})
            n, c = (16, 8) if paced else (32, 2)
            if paced:
                headers["x-codex-bench-gap"] = str(PACED_GAP_MS)
            body = files[(endpoint, True)]
            for gw in gws.values():
                load.hey(gw.url + PATHS[endpoint], body, headers, 2, 2)

            key = f"CPU per event, {endpoint}, {'paced' if paced else 'burst'} upstream (µs)"
            results[key] = alternate(gws, args.repeats, lambda gw: cpu_per(
                gw, PATHS[endpoint], body, headers, n, c, 1e6 / (n * events)))
    finally:
        for gw in gws.values():
            gw.stop()
    return results


def under_load(tmp, found, args) -> dict:
    """CPU per request with 32 concurrent clients, HTTP transport, each shape."""
    from .upstream_load import SHAPES, drive, measure_load
    results = {}
    with FakeUpstream("--websocket", "--fast") as fake:
        gws = {name: Gateway(tmp, fake.url, workers=2, root=v["root"], name=f"load-{i}",
                             extra_env=dict(v["env"], CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT="http"))
               .start() for i, (name, v) in enumerate(found.items())}
        try:
            for name, gw in gws.items():
                drive(gw.url, 32, 3, SHAPES[1], f"warm-{name}")
            runs = itertools.count()  # a tag per run: its conversations are new ones
            for shape in SHAPES:
                def measure(gw, shape=shape):
                    fake.control("POST", "/_fake/reset")
                    m = measure_load(gw, fake, shape, 32, args.load_requests,
                                     f"{gw.name}-{next(runs)}")
                    return None if m["errors"] else round(m["cpu_ms"], 3)
                results[f"CPU per request, 32 concurrent, {shape} (ms)"] = alternate(
                    gws, args.repeats, measure)
        finally:
            for gw in gws.values():
                gw.stop()
    return results


def table(results: dict, names: list[str]) -> str:
    lines = ["| figure | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for figure, runs in results.items():
        cells = []
        base = load.median(runs.get("before") or [])
        base_off = load.median(runs.get("before, features off") or [])
        for name in names:
            xs = [x for x in runs[name] if x is not None]
            med = load.median(xs)
            if med is None:
                cells.append("failed")
                continue
            ref = base_off if name.endswith("features off") else base
            ratio = f" ×{med / ref:.2f}" if ref and not name.startswith("before") else ""
            cells.append(f"{med:g} ({min(xs):g}–{max(xs):g}){ratio}")
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--before", type=Path, required=True,
                        help="the source tree to compare with (a checkout of an earlier commit)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000, help="per measurement")
    parser.add_argument("--no-events", dest="events", action="store_false")
    parser.add_argument("--no-load", dest="load", action="store_false")
    parser.add_argument("--load-requests", type=int, default=100,
                        help="per client, under load (32 clients)")
    args = parser.parse_args(argv)
    found = variants(args.before.resolve())
    with tempfile.TemporaryDirectory(prefix="codex-gateway-compare-") as tmp:
        tmp = Path(tmp)
        info = bodies.prepare(tmp / "bodies")
        files = request_files(tmp)
        results: dict = {}
        with upstream_nginx(tmp, tmp / "bodies", info["headers"]) as static:
            results.update(per_request(tmp, static.url, found, files, args))
            if args.events:
                results.update(per_event(tmp, static.url, found, files, info["long"]["events"],
                                         False, args))
        if args.events:
            with PacedUpstream(tmp / "bodies", info["headers"]) as paced:
                results.update(per_event(tmp, paced.url, found, files, info["long"]["events"],
                                         True, args))
        if args.load:
            results.update(under_load(tmp, found, args))
    text = (f"before: {args.before}; medians of {args.repeats} alternated runs (range); "
            "×: after ÷ before with the same features\n\n" + table(results, list(found)))
    publish("compare", text, {"before": str(args.before), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
