"""bench.floor
~~~~~~~~~~~~~~
``python -m bench.floor``: what this gateway's shape costs before the gateway
does anything, side by side in one run with the gateway itself.

Four servers, one worker each, against nginx serving captured Codex answers
(the HTTP transport's upstream in ``bench.run``); ``hey`` sends small
``/v1/responses`` requests one at a time; CPU is the worker's utime + stime per
request (ms), medians of ``--repeats`` alternated runs with their range:

* gunicorn (stock gthread) + Flask answering a constant (:mod:`bench.floor_apps`);
* the same + one ``requests`` POST to nginx: a twelve-line proxy of this shape;
* the gateway with ``[prefix]`` and ``[responses] store`` off;
* the gateway as shipped.

The ratio column is against the twelve-line proxy. Prints a markdown table;
writes ``bench/out/floor.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import bodies, load
from .compare import FEATURES_OFF, alternate, cpu_per
from .procs import ROOT, Gateway, children, free_port, publish, upstream_nginx
from .run import AUTH, request_files

PATH = "/v1/responses"


class FloorApp:
    """``gunicorn bench.floor_apps:<name>``, one stock gthread worker."""

    def __init__(self, name: str, upstream: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, FLOOR_UPSTREAM=upstream, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "64",
             "--keep-alive", "75", "--access-logfile", "-", "-b", f"127.0.0.1:{self.port}",
             f"bench.floor_apps:{name}"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.workers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"bench.floor_apps:{name} did not start")
            time.sleep(0.1)
        time.sleep(0.5)

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000, help="per measurement")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="codex-gateway-floor-") as tmp:
        tmp = Path(tmp)
        info = bodies.prepare(tmp / "bodies")
        body = request_files(tmp)[("responses", False)]
        with upstream_nginx(tmp, tmp / "bodies", info["headers"]) as static:
            servers = {}
            try:
                servers["gunicorn + Flask, a constant answer"] = FloorApp("constant", static.url)
                servers["the same + one requests POST (a 12-line proxy)"] = FloorApp(
                    "proxy", static.url)
                servers["the gateway, features off"] = Gateway(
                    tmp, static.url, workers=1, name="off", extra_env=FEATURES_OFF).start()
                servers["the gateway, shipped"] = Gateway(tmp, static.url, workers=1,
                                                          name="shipped").start()
                for server in servers.values():
                    load.hey(server.url + PATH, body, AUTH, 200, 1)  # warm-up
                runs = alternate(servers, args.repeats, lambda s: cpu_per(
                    s, PATH, body, AUTH, args.requests, 1, 1000 / args.requests))
            finally:
                for server in servers.values():
                    server.stop()
    base = _median(runs["the same + one requests POST (a 12-line proxy)"])
    rows = ["| server | CPU per request (ms) | ÷ the 12-line proxy |", "|---|---|---|"]
    for name, values in runs.items():
        good = [v for v in values if v is not None]
        med = _median(values)
        rows.append(f"| {name} | {med} ({min(good)}–{max(good)}) | ×{med / base:.2f} |"
                    if good and base else f"| {name} | failed | – |")
    text = (f"Small JSON /v1/responses requests one at a time, {args.requests} per run; medians "
            f"of {args.repeats} alternated runs (range)\n\n" + "\n".join(rows) + "\n")
    publish("floor", text, runs)
    return 0


def _median(values: list) -> float | None:
    good = sorted(v for v in values if v is not None)
    return good[len(good) // 2] if good else None


if __name__ == "__main__":
    raise SystemExit(main())
