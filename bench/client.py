"""bench.client
~~~~~~~~~~~~~~~
Load clients that run in their own process (``python -m bench.client ...``)
and print one JSON object, so the process being measured never shares a CPU
budget or an interpreter with the client that measures it.

``latency``: N requests one after another on one keep-alive connection;
per request the time to the first body byte and to the end (µs).

``streams``: K streaming requests opened at once (asyncio, one connection
each); per stream the status, first-byte and end times and whether the answer
ended with its terminal event. A stream that ends any other way is dropped.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import sys
import time
from urllib.parse import urlsplit

TERMINALS = (b"response.completed", b"data: [DONE]")


def _headers(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, _, value = pair.partition(":")
        out[name.strip()] = value.strip()
    return out


def _connect(parts) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.connect()
    # http.client writes the head and the body separately: without TCP_NODELAY the
    # body waits for a delayed ACK and every request gains milliseconds.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def latency(url: str, body: bytes, headers: dict, n: int, warmup: int) -> dict:
    parts = urlsplit(url)
    conn = _connect(parts)
    headers = {"Content-Type": "application/json", **headers}
    total, first, statuses, errors = [], [], {}, 0
    for i in range(warmup + n):
        t0 = time.perf_counter_ns()
        try:
            conn.request("POST", parts.path, body=body, headers=headers)
            resp = conn.getresponse()
            chunk = resp.read1(65536)
            t1 = time.perf_counter_ns()
            data = [chunk, resp.read()]
            t2 = time.perf_counter_ns()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = _connect(parts)
            continue
        if i < warmup:
            continue
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        total.append((t2 - t0) / 1000)
        first.append((t1 - t0) / 1000)
        last = b"".join(data)
    conn.close()
    return {"total_us": total, "ttfb_us": first, "statuses": statuses, "errors": errors,
            "last_body_tail": last[-200:].decode("utf-8", "replace") if n else ""}


async def _one_stream(host, port, path, body, headers, start_evt, out, idx, timeout):
    rec = {"status": None, "t_connect": None, "t_first": None, "t_end": None, "ok": False,
           "bytes": 0, "error": None}
    out[idx] = rec
    await start_evt.wait()
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        rec["t_connect"] = time.monotonic()
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
        writer.write(head + body)
        await writer.drain()
        tail = b""
        deadline = t0 + timeout
        while True:
            data = await asyncio.wait_for(reader.read(65536), max(0.1, deadline - time.monotonic()))
            if not data:
                break
            if rec["t_first"] is None:
                rec["t_first"] = time.monotonic()
                try:
                    rec["status"] = int(data.split(b" ", 2)[1])
                except (IndexError, ValueError):
                    rec["status"] = 0
            rec["bytes"] += len(data)
            tail = (tail + data)[-4096:]
        rec["t_end"] = time.monotonic()
        rec["ok"] = rec["status"] == 200 and any(t in tail for t in TERMINALS)
        writer.close()
    except (OSError, asyncio.TimeoutError) as exc:
        rec["error"] = type(exc).__name__
        rec["t_end"] = time.monotonic()


async def _streams(url, body, headers, k, timeout):
    parts = urlsplit(url)
    start = asyncio.Event()
    out: list = [None] * k
    tasks = [asyncio.create_task(_one_stream(parts.hostname, parts.port, parts.path, body,
                                             headers, start, out, i, timeout))
             for i in range(k)]
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    start.set()
    await asyncio.gather(*tasks)
    return t0, out


def streams(url: str, body: bytes, headers: dict, k: int, timeout: float) -> dict:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < k + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, k + 1024), hard))
    t0, recs = asyncio.run(_streams(url, body, headers, k, timeout))
    points = []
    for r in recs:
        if r["t_first"] is not None:
            points += [(r["t_first"], 1), (r["t_end"], -1)]
    held = peak = 0
    for _, d in sorted(points, key=lambda p: (p[0], p[1])):
        held += d
        peak = max(peak, held)
    # Held at once: streams that had started before the first one finished.
    first_end = min((r["t_end"] for r in recs if r["ok"]), default=None)
    held_at_once = sum(1 for r in recs if r["t_first"] is not None and first_end is not None
                       and r["t_first"] < first_end)
    firsts = sorted((r["t_first"] - t0) * 1000 for r in recs if r["t_first"] is not None)
    ends = [(r["t_end"] - t0) for r in recs if r["t_end"] is not None]
    errors: dict = {}
    for r in recs:
        if not r["ok"]:
            if r["error"]:
                key = r["error"]
            elif r["status"] != 200:
                key = f"status_{r['status']}"
            else:
                key = "no_terminal"
            errors[key] = errors.get(key, 0) + 1
    return {
        "requested": k, "completed": sum(1 for r in recs if r["ok"]), "peak_open": peak,
        "held_at_once": held_at_once,
        "dropped": sum(1 for r in recs if not r["ok"]), "errors": errors,
        "first_byte_ms_p50": firsts[len(firsts) // 2] if firsts else None,
        "first_byte_ms_max": firsts[-1] if firsts else None,
        "duration_s_max": max(ends) if ends else None,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="bench load clients")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("latency", "streams"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True)
        p.add_argument("--body", required=True, help="file with the JSON request body")
        p.add_argument("--header", action="append", default=[])
    sub.choices["latency"].add_argument("--n", type=int, default=500)
    sub.choices["latency"].add_argument("--warmup", type=int, default=50)
    sub.choices["streams"].add_argument("--k", type=int, default=256)
    sub.choices["streams"].add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    with open(args.body, "rb") as fh:
        body = fh.read()
    headers = _headers(args.header)
    if args.cmd == "latency":
        result = latency(args.url, body, headers, args.n, args.warmup)
    else:
        result = streams(args.url, body, headers, args.k, args.timeout)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
