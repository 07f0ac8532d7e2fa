"""bench.upstream_ws
~~~~~~~~~~~~~~~~~~~~~
``python -m bench.upstream_ws`` (part of ``make bench``): the Codex backend over
WebSocket against HTTP, through the gateway with the shipped config (2 workers),
against the fake backend (``tests.fakes.codex_upstream --websocket --fast``, its
own process).

1. **Upload per turn**: a 20-turn agent session (a Responses client, as Codex CLI
   over HTTP: every turn resends the history with a ~4 KB tool result and the
   answer's items) on one kept-alive connection, with
   ``upstream.codex_transport = "http"`` and ``= "websocket"``: the bytes the
   backend received per turn (the fake records them).
2. **Added time to first byte**: the client's time to the first SSE byte through
   the gateway minus the same request sent directly to the fake over HTTP, per
   transport (turn 1, which opens the socket, and the median of turns 2–20).
3. **Warm sockets**: K Chat conversations (OpenCode's shape, a session header)
   × 20 turns, interleaved: the share of turns after each conversation's first
   that found its socket (sent as ``previous_response_id`` + new items), for
   the ways requests reach a worker: kept-alive connections, a new connection
   per request, nginx in front (the shipped upstream block: a keep-alive pool to
   one gunicorn), and nginx hashing on the session header over two gunicorn
   instances of one worker each.

Prints a markdown table; writes ``bench/out/upstream_ws.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .procs import (FakeUpstream, Gateway, Nginx, client_headers, free_port, publish,
                    upstream_headers)

MODEL = "gpt-5-codex"
INSTRUCTIONS = ("You are a coding agent. Read files, run commands, explain what you do. " * 90)
TOOLS = [{"type": "function", "name": name, "description": f"{name} tool " * 20,
          "parameters": {"type": "object", "properties": {"arg": {"type": "string"}},
                         "required": ["arg"]}} for name in ("shell", "read", "write", "grep")]
TOOL_RESULT = "".join(f"line {i}: some file content for the agent to look at\n"
                      for i in range(80))  # ~4.4 KB


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def first_byte(resp, started: float) -> tuple[float, bytes]:
    data = b""
    ttfb = None
    for chunk in resp.iter_content(chunk_size=None):
        if ttfb is None:
            ttfb = time.perf_counter() - started
        data += chunk
    return ttfb, data


def completed_output(data: bytes) -> list:
    for line in data.split(b"\n"):
        if line.startswith(b"data: ") and b'"response.completed"' in line:
            return json.loads(line[6:])["response"]["output"]
    raise RuntimeError(f"no response.completed in {data[-300:]!r}")


def agent_session(url: str, path: str, headers: dict, turns: int, key: str,
                  direct: bool = False) -> list[float]:
    """One conversation on one kept-alive connection; TTFB per turn (seconds)."""
    http = requests.Session()
    history, ttfbs = [], []
    for i in range(turns):
        history.append(user(f"Tool result of step {i}:\n{TOOL_RESULT}\n[[say:step {i} done]]"))
        body = {"model": MODEL, "instructions": INSTRUCTIONS, "tools": TOOLS, "input": history,
                "stream": True, "prompt_cache_key": key}
        if direct:  # what the gateway would send the backend over HTTP
            body.update(store=False, include=["reasoning.encrypted_content"])
        started = time.perf_counter()
        with http.post(url + path, json=body, headers=headers, stream=True, timeout=60) as resp:
            if resp.status_code != 200:
                raise RuntimeError(f"turn {i}: {resp.status_code} {resp.text[:300]}")
            ttfb, data = first_byte(resp, started)
        ttfbs.append(ttfb)
        history = history + completed_output(data)
    return ttfbs


def chat_conversation(url: str, turns: int, keepalive: bool, session: str,
                      think: float) -> None:
    """One Chat conversation (OpenCode's shape), *think* seconds between turns."""
    http = requests.Session() if keepalive else None
    history = [{"role": "system", "content": INSTRUCTIONS}]
    for t in range(turns):
        history.append({"role": "user", "content": f"turn {t}: [[say:ok {t}]]"})
        headers = client_headers(**{"x-session-id": session})
        if not keepalive:
            headers["Connection"] = "close"
        resp = (http.post if http else requests.post)(
            url + "/v1/chat/completions", json={"model": MODEL, "messages": history},
            headers=headers, timeout=60)
        resp.raise_for_status()
        history.append({"role": "assistant",
                        "content": resp.json()["choices"][0]["message"]["content"]})
        time.sleep(think)


def chat_conversations(url: str, k: int, turns: int, keepalive: bool, tag: str,
                       think: float = 0.02) -> None:
    """K conversations at once, as K users (or agents) would run them."""
    with ThreadPoolExecutor(k) as pool:
        futures = [pool.submit(chat_conversation, url, turns, keepalive, f"{tag}-{c}", think)
                   for c in range(k)]
        for f in futures:
            f.result()


def warm_share(records: list[dict]) -> tuple[float, int]:
    """Share of follow-up turns (not a conversation's first) sent as a delta."""
    seen, warm, follow = set(), 0, 0
    for rec in records:
        key = tuple(rec["cache_key"] or ())
        if key in seen:
            follow += 1
            warm += bool((rec.get("wire") or {}).get("previous_response_id"))
        seen.add(key)
    return (warm / follow if follow else 0.0), follow


NGINX_MAP = """
    map $http_upgrade $connection_upgrade { default upgrade; '' ""; }
"""
NGINX_SERVER = """
    upstream gw_{name} {{
{balance}{servers}        keepalive 16;
        keepalive_timeout 60s;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 32m;
        location / {{
            proxy_pass http://gw_{name};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 900s;
        }}
    }}
"""


def nginx_for(workdir: Path, name: str, gunicorn_ports: list[int], hash_header: bool) -> Nginx:
    port = free_port()
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in gunicorn_ports)
    balance = "        hash $http_x_session_id consistent;\n" if hash_header else ""
    body = NGINX_MAP + NGINX_SERVER.format(name=name, balance=balance, servers=servers,
                                           port=port)
    return Nginx(workdir, name, body, {name: port})


def run(args) -> dict:
    results: dict = {"turns": args.turns, "conversations": args.conversations}
    with tempfile.TemporaryDirectory(prefix="bench-upws-") as tmp, \
            FakeUpstream("--websocket", "--fast") as fake:
        work = Path(tmp)
        # -- 1 and 2: upload and time to first byte per transport ---------------------
        gateways = {t: Gateway(work, fake.url, name=f"gw-{t}", extra_env={
            "CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT": t}).start() for t in ("http", "websocket")}
        try:
            for gw in gateways.values():
                agent_session(gw.url, "/v1/responses", client_headers(), 2, "warmup")
            runs: dict = {"direct": [], "http": [], "websocket": []}
            recs: dict = {}
            for r in range(args.repeats):  # interleaved, so load from others hits all alike
                fake.control("POST", "/_fake/reset")
                runs["direct"].append(agent_session(
                    fake.url, "/backend-api/codex/responses", upstream_headers(), args.turns,
                    f"direct-{r}", direct=True))
                for transport, gw in gateways.items():
                    fake.control("POST", "/_fake/reset")
                    runs[transport].append(agent_session(
                        gw.url, "/v1/responses", client_headers(), args.turns, f"agent-{r}"))
                    recs[transport] = fake.control("GET", "/_fake/requests")
        finally:
            for gw in gateways.values():
                gw.stop()
        fake.control("POST", "/_fake/reset")

        def first(series):  # median over repeats of turn 1
            return statistics.median(s[0] for s in series)

        def later(series):  # median over repeats of the median of turns 2..n
            return statistics.median(statistics.median(s[1:]) for s in series)

        for transport in ("http", "websocket"):
            results[transport] = {
                "bytes": [r["wire_bytes"] for r in recs[transport]],
                "ttfb_ms": [[t * 1000 for t in s] for s in runs[transport]],
                "added_first_ms": (first(runs[transport]) - first(runs["direct"])) * 1000,
                "added_median_ms": (later(runs[transport]) - later(runs["direct"])) * 1000,
                "transports": sorted({r["transport"] for r in recs[transport]}),
            }
        results["direct_ttfb_ms"] = [[t * 1000 for t in s] for s in runs["direct"]]
        results["repeats"] = args.repeats
        results["direct_median_ms"] = later(runs["direct"]) * 1000
        # -- 3: warm sockets ----------------------------------------------------------
        k, turns = args.conversations, args.turns
        # Answers that take a while (a model streams): busy workers, as in real use.
        fake.control("POST", "/_fake/config", {"fast": False, "event_delay": args.event_delay})
        warm = {}
        with Gateway(work, fake.url, name="gw-warm") as gw:
            for label, keepalive in (("direct, kept-alive connections", True),
                                     ("direct, a new connection per request", False)):
                chat_conversations(gw.url, k, turns, keepalive, label[:12].replace(" ", ""))
                warm[label] = warm_share(fake.control("GET", "/_fake/requests"))
                fake.control("POST", "/_fake/reset")
            with nginx_for(work, "ngx", [gw.port], hash_header=False) as ngx:
                chat_conversations(ngx.url, k, turns, True, "nginx")
                warm["nginx (shipped upstream block), kept-alive clients"] = warm_share(
                    fake.control("GET", "/_fake/requests"))
                fake.control("POST", "/_fake/reset")
        with Gateway(work, fake.url, workers=1, name="gw-one") as one, \
                Gateway(work, fake.url, workers=1, name="gw-two") as two, \
                nginx_for(work, "ngxhash", [one.port, two.port], hash_header=True) as ngx:
            chat_conversations(ngx.url, k, turns, True, "hash")
            warm["nginx hash $http_x_session_id over 2 gunicorns × 1 worker"] = warm_share(
                fake.control("GET", "/_fake/requests"))
        results["warm"] = {label: {"share": share, "follow_ups": n}
                           for label, (share, n) in warm.items()}
        fake.control("POST", "/_fake/reset")
        results["cpu_event"] = cpu_per_event(work, fake, args.repeats)
    return results


CPU_STREAMS = 8      # SSE streams at once
CPU_DELTAS = 1000    # text deltas per answer: ~1,000 events, one per backend message


def cpu_per_event(work: Path, fake, repeats: int) -> dict:
    """Gateway CPU per streamed event (µs, median of *repeats*) for SSE clients whose
    answers come from the backend over HTTP and over its WebSocket, 1 ms apart, one
    event per packet. The fake is Python too; only the gateway's workers are counted."""
    from . import load
    text = " ".join(f"w{i}" for i in range(3 * CPU_DELTAS))
    fake.control("POST", "/_fake/config", {"fast": False, "event_delay": 0.001,
                                            "deltas": CPU_DELTAS, "reply": text})
    out = {}
    try:
        for transport in ("http", "websocket"):
            with Gateway(work, fake.url, name=f"gw-cpu-{transport}", extra_env={
                    "CODEX_GATEWAY_UPSTREAM_CODEX_TRANSPORT": transport}) as gw:
                def one(i: int) -> int:
                    resp = requests.post(gw.url + "/v1/responses", json={
                        "model": MODEL, "input": "hi", "stream": True,
                        "prompt_cache_key": f"cpu-{i}"}, headers=client_headers(),
                        stream=True, timeout=120)
                    return sum(1 for line in resp.iter_lines() if line.startswith(b"event:"))

                def streams() -> int:
                    with ThreadPoolExecutor(CPU_STREAMS) as pool:
                        return sum(pool.map(one, range(CPU_STREAMS)))

                one(0)  # warm-up: sockets, pools, imports
                out[transport] = _cpu_runs(gw, streams, repeats)
                if transport == "http":  # Codex CLI's shape: a client WebSocket per session
                    def sockets() -> int:
                        with ThreadPoolExecutor(CPU_STREAMS) as pool:
                            return sum(pool.map(lambda i: ws_turn(gw.url, f"cpu-ws-{i}"),
                                                range(CPU_STREAMS)))
                    ws_turn(gw.url, "cpu-ws-warm")
                    out["client_websocket"] = _cpu_runs(gw, sockets, repeats)
    finally:
        fake.control("POST", "/_fake/config", {"fast": True, "deltas": 4, "reply": None,
                                                "event_delay": 0.0})
    return out


def _cpu_runs(gw, fn, repeats: int) -> dict:
    from . import load
    runs = []
    for _ in range(repeats):
        events, cpu = load.cpu_of(gw.workers(), fn)
        runs.append(cpu / events * 1e6)
    return {"us": statistics.median(runs), "runs_us": [round(r, 1) for r in runs],
            "events": events}


def ws_turn(url: str, key: str) -> int:
    """One turn over a client WebSocket, as Codex CLI sends it; the frames received."""
    from websockets.sync.client import connect
    headers = dict(client_headers(), **{"session-id": key})
    with connect(url.replace("http://", "ws://") + "/v1/responses",
                 additional_headers=headers, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "response.create", "model": MODEL, "input": [user("hi")],
                            "prompt_cache_key": key}))
        frames = 0
        while True:
            frames += 1
            if json.loads(ws.recv(timeout=60))["type"] in ("response.completed",
                                                           "response.failed", "error"):
                return frames


def table(res: dict) -> str:
    http, ws = res["http"], res["websocket"]
    n = res["turns"]

    def kb(value):
        return f"{value / 1024:.1f}"

    rows = [
        "| figure | HTTP transport | WebSocket transport | note |",
        "|---|---|---|---|",
        f"| upstream bytes, turn 1 (KB) | {kb(http['bytes'][0])} | {kb(ws['bytes'][0])} | "
        "full input on both |",
        f"| upstream bytes, turn {n // 2} (KB) | {kb(http['bytes'][n // 2 - 1])} | "
        f"{kb(ws['bytes'][n // 2 - 1])} | |",
        f"| upstream bytes, turn {n} (KB) | {kb(http['bytes'][-1])} | {kb(ws['bytes'][-1])} | "
        f"×{http['bytes'][-1] / ws['bytes'][-1]:.0f} less |",
        f"| upstream bytes, {n} turns (KB) | {kb(sum(http['bytes']))} | {kb(sum(ws['bytes']))} "
        f"| ×{sum(http['bytes']) / sum(ws['bytes']):.1f} less |",
        f"| added time to first byte, turn 1 (ms) | {http['added_first_ms']:+.1f} | "
        f"{ws['added_first_ms']:+.1f} | WebSocket: opens the socket |",
        f"| added time to first byte, median turns 2–{n} (ms) | {http['added_median_ms']:+.1f} | "
        f"{ws['added_median_ms']:+.1f} | vs the same request sent directly over HTTP |",
        f"| time to first byte direct to the fake, median turns 2–{n} (ms) | "
        f"{res['direct_median_ms']:.1f} | | the baseline (median of {res['repeats']} sessions) |",
    ]
    cpu = res.get("cpu_event")
    if cpu:
        rows.append(f"| gateway CPU per streamed event, {CPU_STREAMS} SSE streams, 1 ms apart "
                    f"(µs) | {cpu['http']['us']:.1f} | {cpu['websocket']['us']:.1f} | "
                    "relayed; one event per backend packet |")
        if "client_websocket" in cpu:
            rows.append(f"| same, {CPU_STREAMS} client WebSockets (Codex CLI's transport) (µs) | "
                        f"{cpu['client_websocket']['us']:.1f} | | relayed |")
    rows += ["", f"| how turns reach a worker ({res['conversations']} Chat conversations × {n} "
             "turns) | turns that found a warm socket |", "|---|---|"]
    for label, value in res["warm"].items():
        rows.append(f"| {label} | {value['share'] * 100:.0f} % of {value['follow_ups']} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="agent sessions per transport")
    parser.add_argument("--event-delay", type=float, default=0.01,
                        help="seconds between the fake's events in the warm-socket runs")
    args = parser.parse_args(argv)
    started = time.time()
    res = run(args)
    res["seconds"] = time.time() - started
    publish("upstream_ws", table(res), res)


if __name__ == "__main__":
    main()
