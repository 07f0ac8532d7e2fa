"""bench.soak
~~~~~~~~~~~~~
``python -m bench.soak`` (``make soak``): a few minutes of mixed load on both
endpoints, streaming and not, while the fake upstream injects faults (5xx,
429, resets mid-stream, stalls, failed and truncated answers) and some clients
leave early. Then every client request is matched with what the upstream saw
(each request carries a unique tag in its prompt), and every error must be the
expected consequence of a fault injected into that request's upstream attempt.

Reports: requests by outcome, errors by class with their cause, requests lost
without an error response (must be 0), and the gateway workers' RSS, open fds
and threads over time (start and end must match within noise).

The gateway runs the shipped gunicorn config with two accounts (so a failing
account fails over), ``upstream.read_timeout=2`` (a stall becomes an error in
seconds, not minutes) and ``server.keepalive_seconds=1`` (stalls exercise the
keep-alive path).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from .procs import ACCOUNT_IDS, CLIENT_KEY, OUT, ROOT, FakeUpstream, Gateway, sample

TAG = re.compile(r"soak-\d+-\d+")
# fault -> (weight, params); injected into the next upstream attempt that arrives
STREAM_FAULTS = {
    "reset_mid_stream": (4, {}),
    "stall": (2, {"seconds": 4}),
    "truncate": (2, {}),
    "response_failed": (1, {}),
    "error_event": (1, {"message": "Rate limit reached. Please try again in 1s."}),
}
HTTP_FAULTS = {"http_500": {}, "http_429": {"retry_after": 1}}
# what each fault may legitimately become at the client (error codes)
EXPECTED = {
    "http_500": {"upstream_error"},
    # every account answered 429: the client gets the earliest reset instead
    "http_429": {"rate_limit_exceeded", "all_accounts_cooling_down"},
    "reset_mid_stream": {"upstream_connection_lost"},
    "stall": {"upstream_timeout"},
    "truncate": {"stream_truncated"},
    "response_failed": {"server_error", "response_failed"},
    "error_event": {"rate_limit_exceeded", "all_accounts_cooling_down"},  # as http_429
}
COOLDOWN_WINDOW = 65.0  # longest cooldown an injected fault can cause (60 s cap + slack)
# faults that put an account in cooldown: every one of them may end an attempt before
# the answer starts (in-stream failover, docs/concepts/accounts.md: 5xx and timeouts 5-60 s,
# 429s for their Retry-After), and then the account cools, not only after HTTP errors
COOLING_FAULTS = set(EXPECTED)


# -- the client process ----------------------------------------------------------

def client_main(args) -> None:
    import requests

    stop_at = time.time() + args.duration
    out = open(args.out, "w", buffering=1)
    lock = threading.Lock()
    rnd = random.Random(args.seed)
    counter = [0]

    def next_id() -> int:
        with lock:
            counter[0] += 1
            return counter[0]

    def one(session, i: int, r: random.Random) -> dict:
        tag = f"soak-{os.getpid()}-{i}"
        endpoint = "chat" if r.random() < 0.5 else "responses"
        stream = r.random() < 0.6
        abort = r.random() < (0.12 if stream else 0.04)
        text = f"Reply briefly. Request {tag}."
        if endpoint == "chat":
            body = {"model": "gpt-5-codex", "stream": stream,
                    "messages": [{"role": "user", "content": text}]}
            url = args.url + "/v1/chat/completions"
        else:
            body = {"model": "gpt-5-codex", "stream": stream, "input": text,
                    "instructions": "Be brief."}
            url = args.url + "/v1/responses"
        rec = {"tag": tag, "endpoint": endpoint, "stream": stream, "abort": abort,
               "t0": time.time(), "status": None, "outcome": None, "code": None, "events": 0}
        headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
        timeout = (5, 0.05) if abort and not stream else (5, 30)
        try:
            resp = session.post(url, json=body, headers=headers, stream=stream, timeout=timeout)
            rec["status"] = resp.status_code
            if resp.status_code != 200:
                rec["retry_after"] = resp.headers.get("Retry-After")
                try:
                    err = resp.json().get("error") or {}
                except ValueError:
                    err = {}
                rec.update(outcome="http_error", code=err.get("code"))
            elif not stream:
                data = resp.json()
                good = bool(data.get("output") or data.get("choices"))
                rec["outcome"] = "ok" if good else "bad_body"
            else:
                rec.update(read_stream(resp, endpoint, abort))
            resp.close()
        except requests.exceptions.ReadTimeout:
            rec["outcome"] = "client_abort" if abort else "lost"
            rec["code"] = "client_read_timeout"
        except (requests.RequestException, OSError, ValueError) as exc:
            rec.update(outcome="lost", code=type(exc).__name__)
        rec["t1"] = time.time()
        return rec

    def read_stream(resp, endpoint: str, abort: bool) -> dict:
        events = 0
        for line in resp.iter_lines(chunk_size=None, decode_unicode=False):
            if not line.startswith(b"data:"):
                if line.startswith(b"event: response.completed"):
                    return {"outcome": "ok", "events": events}
                continue
            events += 1
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return {"outcome": "ok", "events": events}
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            kind = data.get("type")
            if endpoint == "chat" and isinstance(data.get("error"), dict):
                return {"outcome": "stream_error", "code": data["error"].get("code"),
                        "events": events}
            if kind == "error":
                err = data.get("error") if isinstance(data.get("error"), dict) else data
                return {"outcome": "stream_error", "code": err.get("code"), "events": events}
            if kind == "response.failed":
                err = (data.get("response") or {}).get("error") or {}
                return {"outcome": "stream_error", "code": err.get("code") or "response_failed",
                        "events": events}
            if abort and events >= 2:
                return {"outcome": "client_abort", "events": events}
        return {"outcome": "lost", "code": "stream_ended_without_terminal", "events": events}

    def worker(k: int) -> None:
        r = random.Random(rnd.random() + k)
        session = requests.Session()
        while time.time() < stop_at:
            rec = one(session, next_id(), r)
            with lock:
                out.write(json.dumps(rec) + "\n")
            if rec["status"] == 429:  # a polite client waits as told (capped)
                time.sleep(min(2.0, max(0.2, float(rec.get("retry_after") or 1))))
            if rec["outcome"] in ("client_abort", "lost"):
                session.close()  # an aborted connection must not be reused
                session = requests.Session()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


# -- the orchestrator ----------------------------------------------------------------

class Sampler:
    """The gateway workers' RSS, fds and threads every *interval* seconds."""

    def __init__(self, gateway: Gateway, interval: float):
        self.gw, self.interval = gateway, interval
        self.series: list[dict] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def snap(self, label: str = "") -> dict:
        pids = self.gw.workers()
        per = {p: sample(p) for p in pids}
        row = {"t": round(time.monotonic() - self.t0, 1), "label": label, "workers": pids,
               "rss_mb": round(sum(s.rss for s in per.values()) / 2**20, 1),
               "fds": sum(s.fds for s in per.values()),
               "threads": sum(s.threads for s in per.values())}
        self.series.append(row)
        return row

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.snap()

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def injector(fake: FakeUpstream, stop: threading.Event, log: list, rnd: random.Random,
             interval: float, http_every: float) -> None:
    names = list(STREAM_FAULTS)
    weights = [STREAM_FAULTS[n][0] for n in names]
    next_http = time.monotonic() + http_every / 2
    turn = 0
    while not stop.wait(interval * rnd.uniform(0.5, 1.5)):
        if time.monotonic() >= next_http:
            next_http = time.monotonic() + http_every
            name = list(HTTP_FAULTS)[turn % len(HTTP_FAULTS)]
            # alternately one account (absorbed by failover) and both (reaches the client)
            target = ACCOUNT_IDS[turn % 2] if turn % 3 != 2 else None
            count = 1 if target else 2
            params = HTTP_FAULTS[name]
            turn += 1
        else:
            name = rnd.choices(names, weights)[0]
            target, count, params = None, 1, STREAM_FAULTS[name][1]
        try:
            fake.control("POST", "/_fake/faults", {"fault": name, "count": count,
                                                   "account": target, "params": params})
            log.append({"t": time.time(), "fault": name, "count": count, "account": target})
        except Exception as exc:  # noqa: BLE001 - reported, the soak goes on
            log.append({"t": time.time(), "fault": name, "error": str(exc)})


def classify(records: list[dict], upstream: list[dict]) -> dict:
    """Match client requests with upstream attempts; explain every error."""
    attempts = defaultdict(list)
    http_faults = defaultdict(list)  # account -> times of HTTP faults
    for rec in upstream:
        body = json.dumps(rec.get("body") or {})
        m = TAG.search(body)
        if m:
            attempts[m.group(0)].append(rec)
        if rec.get("fault") in COOLING_FAULTS:
            http_faults[rec.get("account")].append(rec.get("started_at") or 0)
    outcomes = Counter()
    errors = Counter()
    unexplained = []
    absorbed = Counter()
    aborted_released = Counter()
    for r in records:
        att = sorted(attempts.get(r["tag"], []), key=lambda a: a["id"])
        faults = [a.get("fault") for a in att]
        last = faults[-1] if faults else None
        outcome = r["outcome"]
        outcomes[outcome] += 1
        if outcome == "ok":
            if last is not None:
                unexplained.append({**r, "faults": faults, "why": "ok despite a fault"})
            for f in faults[:-1]:
                absorbed[f] += 1
            continue
        if outcome == "client_abort":
            if r["stream"] and att:
                aborted_released["upstream saw the disconnect" if any(
                    a.get("client_closed_at") for a in att) else "upstream finished first"] += 1
            continue
        cls = f"{outcome}:{r.get('status') or '-'}:{r.get('code')}"
        if outcome in ("http_error", "stream_error"):
            if r.get("code") == "all_accounts_cooling_down" and not att:
                recent = [a for a, times in http_faults.items()
                          if any(0 <= r["t0"] - t <= COOLDOWN_WINDOW for t in times)]
                cause = "every account cooling after faults injected into its attempts"
                ok = len(recent) >= len(ACCOUNT_IDS)
            else:
                cause = last or "no fault"
                ok = last is not None and r.get("code") in EXPECTED.get(last, ())
            errors[(cls, cause)] += 1
            if not ok:
                unexplained.append({**r, "faults": faults, "why": "error without its fault"})
            continue
        errors[(cls, last or "no fault")] += 1
        unexplained.append({**r, "faults": faults, "why": "lost or malformed"})
    return {"outcomes": outcomes, "errors": errors, "unexplained": unexplained,
            "absorbed": absorbed, "aborted": aborted_released,
            "matched": sum(1 for r in records if attempts.get(r["tag"]))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    sub = parser.add_subparsers(dest="cmd")
    c = sub.add_parser("client", help="(internal) the load-generating process")
    c.add_argument("--url", required=True)
    c.add_argument("--duration", type=float, required=True)
    c.add_argument("--concurrency", type=int, default=12)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--out", required=True)
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--fault-interval", type=float, default=0.6)
    parser.add_argument("--http-fault-every", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.cmd == "client":
        client_main(args)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codex-gateway-soak-") as tmp:
        return run(args, Path(tmp))


def run(args, tmp: Path) -> int:
    t_start = time.monotonic()
    rnd = random.Random(args.seed)
    env = {"CODEX_GATEWAY_UPSTREAM_READ_TIMEOUT": "2",
           "CODEX_GATEWAY_SERVER_KEEPALIVE_SECONDS": "1",
           "CODEX_GATEWAY_SERVER_LOG_LEVEL": "warning"}
    print(f"soak: {args.duration:.0f} s of load after {args.warmup:.0f} s warm-up, "
          f"{args.concurrency} clients, faults every ~{args.fault_interval} s", flush=True)
    with FakeUpstream("--event-delay", "0.01") as fake, \
            Gateway(tmp, fake.url, accounts=ACCOUNT_IDS, extra_env=env, root=args.root,
                    name="soak-gateway") as gw:
        sampler = Sampler(gw, 5.0)
        client_cmd = [sys.executable, "-m", "bench.soak", "client", "--url", gw.url]
        # The warm-up sees the same faults, so thread pools and connection pools reach
        # the size this load needs before the first sample; with twice the clients,
        # since gthread starts pool threads (each with its pooled upstream connection)
        # at new concurrency peaks: reach them here, not during the measured run.
        phase(fake, client_cmd + ["--concurrency", str(2 * args.concurrency)], args,
              args.warmup, tmp / "warmup.jsonl", args.seed + 1000, rnd)
        time.sleep(8)  # let warm-up stalls and cooldowns end
        fake.control("POST", "/_fake/reset")
        sampler.start()
        start = sampler.snap("start")
        print(f"start: workers {start['workers']} RSS {start['rss_mb']} MB, fds {start['fds']}, "
              f"threads {start['threads']}", flush=True)
        records_file = tmp / "requests.jsonl"
        fault_log = phase(fake, client_cmd + ["--concurrency", str(args.concurrency)], args,
                          args.duration, records_file, args.seed, rnd)
        pending = fake.control("GET", "/_fake/faults")
        time.sleep(8)  # stalls and cooldowns end, connections go idle
        end = sampler.snap("end")
        sampler.stop()
        upstream = fake.control("GET", "/_fake/requests")
        restarted = set(start["workers"]) != set(end["workers"])
        log_tail = gw.log_path.read_text(errors="replace")
    records = [json.loads(line) for line in records_file.read_text().splitlines() if line]
    result = classify(records, upstream)
    report = render(args, records, result, fault_log, pending, sampler.series, start, end,
                    restarted, log_tail, time.monotonic() - t_start)
    print(report)
    (args.out / "soak.md").write_text(report + "\n")
    (args.out / "soak.json").write_text(json.dumps({
        "series": sampler.series, "outcomes": result["outcomes"],
        "errors": {f"{k[0]} <- {k[1]}": v for k, v in result["errors"].items()},
        "unexplained": result["unexplained"][:50], "faults_injected": Counter(
            f["fault"] for f in fault_log), "requests": len(records)}, indent=1, default=str))
    try:
        plot_series(sampler.series, args.out / "soak.png")
    except ImportError:
        pass
    return 0 if verdict(result, start, end, restarted)[0] else 1


def phase(fake, client_cmd: list, args, duration: float, out: Path, seed: int,
          rnd: random.Random) -> list:
    """Run the client process for *duration* while faults are injected; the fault log."""
    stop = threading.Event()
    fault_log: list = []
    inj = threading.Thread(target=injector, args=(fake, stop, fault_log, rnd,
                                                  args.fault_interval, args.http_fault_every),
                           daemon=True)
    inj.start()
    try:
        subprocess.run(client_cmd + ["--duration", str(duration), "--out", str(out),
                                     "--seed", str(seed)],
                       cwd=ROOT, check=True, timeout=duration + 180)
    finally:
        stop.set()
        inj.join()
    return fault_log


def rss_slope(series) -> float:
    """RSS growth over the second half of the run, MB per minute (least squares)."""
    half = [r for r in series if r["label"] != "end"][len(series) // 2:]
    if len(half) < 3:
        return 0.0
    n = len(half)
    mt = sum(r["t"] for r in half) / n
    mr = sum(r["rss_mb"] for r in half) / n
    var = sum((r["t"] - mt) ** 2 for r in half) or 1.0
    return sum((r["t"] - mt) * (r["rss_mb"] - mr) for r in half) / var * 60


def verdict(result, start, end, restarted) -> tuple[bool, list[str]]:
    problems = []
    if result["unexplained"]:
        problems.append(f"{len(result['unexplained'])} unexplained outcomes")
    if restarted:
        problems.append("a worker restarted")
    if end["fds"] - start["fds"] > 8:
        problems.append(f"fds grew {start['fds']} -> {end['fds']}")
    if end["threads"] - start["threads"] > 4:
        problems.append(f"threads grew {start['threads']} -> {end['threads']}")
    if end["rss_mb"] - start["rss_mb"] > max(8.0, 0.1 * start["rss_mb"]):
        problems.append(f"RSS grew {start['rss_mb']} -> {end['rss_mb']} MB")
    return not problems, problems


def render(args, records, result, fault_log, pending, series, start, end, restarted, log_tail,
           seconds) -> str:
    ok, problems = verdict(result, start, end, restarted)
    lines = [f"## Soak: {len(records)} requests in {args.duration:.0f} s "
             f"({len(records) / args.duration:.0f}/s), {args.concurrency} clients, "
             f"both endpoints, {sum(r['stream'] for r in records)} streamed", ""]
    lines.append("| outcome | requests |\n|---|---|")
    for k, v in sorted(result["outcomes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {k} | {v} |")
    lines += ["", "| error class (outcome:status:code) | cause (injected fault) | requests |",
              "|---|---|---|"]
    for (cls, cause), v in sorted(result["errors"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {cls} | {cause} | {v} |")
    injected = Counter(f["fault"] for f in fault_log if "error" not in f)
    lines += ["", "faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(injected.items()))
              + f"; still queued at the end: {len(pending)}",
              "faults absorbed by fail-over (client got a normal answer): "
              + (", ".join(f"{k} {v}" for k, v in result["absorbed"].items()) or "none"),
              "client disconnects mid-stream: "
              + (", ".join(f"{k} {v}" for k, v in result["aborted"].items()) or "none"),
              f"requests matched to upstream attempts: {result['matched']} of {len(records)} "
              "(the rest never reached the upstream: cooldown answers, early aborts)",
              f"**requests lost without an error response: "
              f"{result['outcomes'].get('lost', 0) + result['outcomes'].get('bad_body', 0)}**; "
              f"**unexplained: {len(result['unexplained'])}**"]
    for u in result["unexplained"][:10]:
        lines.append(f"  - {u['tag']} {u['endpoint']} stream={u['stream']} -> {u['outcome']} "
                     f"{u.get('status')} {u.get('code')} (upstream faults {u['faults']}: "
                     f"{u['why']})")
    lines += ["", "| gateway workers | start | end |", "|---|---|---|",
              f"| RSS (MB, 2 workers) | {start['rss_mb']} | {end['rss_mb']} |",
              f"| open fds | {start['fds']} | {end['fds']} |",
              f"| threads | {start['threads']} | {end['threads']} |",
              f"| worker pids | {start['workers']} | {end['workers']} |", "",
              f"RSS trend over the second half: {rss_slope(series):+.2f} MB/min", "",
              "RSS MB / fds / threads every 5 s: " + " ".join(
                  f"{r['rss_mb']}/{r['fds']}/{r['threads']}" for r in series), "",
              f"Tracebacks in the gateway log: {log_tail.count('Traceback')}",
              f"Result: {'PASS' if ok else 'FAIL: ' + '; '.join(problems)} "
              f"(soak took {seconds:.0f} s)"]
    return "\n".join(lines)


def plot_series(series, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [r["t"] for r in series]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), dpi=100)
    for ax, key, label in zip(axes, ("rss_mb", "fds", "threads"),
                              ("RSS (MB)", "open fds", "threads")):
        ax.plot(ts, [r[key] for r in series], marker=".")
        ax.set_title(f"gateway workers: {label}")
        ax.set_xlabel("s")
        ax.set_ylim(0, max(r[key] for r in series) * 1.3 + 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
