"""bench.micro
~~~~~~~~~~~~~~
``python -m bench.micro``: the per-request and per-event hot paths in isolation
(µs per call, best of 5), the numbers behind the JSON and SSE choices in
``gateway/sse.py`` and ``gateway/upstream/http/client.py``, and what recording
usage costs a request (``gateway/usage``: the metrics sink and the usage queue,
measured in a child process with ``PROMETHEUS_MULTIPROC_DIR`` set, as under
gunicorn, because prometheus_client picks its mode when first imported), and
what cache-break detection and repair cost a request (``gateway/prefix``: CPU
time per turn of a coding-agent conversation, with both off, detection only,
and detection + repair for a tidy and for a sloppy client; SQLite store), and
what the upstream HTTP client costs a request (:mod:`bench.upstream_http`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import timeit

from . import upstream_http
from .bodies import SMALL_REQUEST, long_text


def best(stmt, number: int, g: dict) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5, globals=g)) / number * 1e6


def sse_events(n: int) -> bytes:
    out = []
    for i in range(n):
        data = {"type": "response.output_text.delta", "sequence_number": i,
                "item_id": "msg_0001", "output_index": 0, "content_index": 0, "delta": "tok "}
        out.append(f"event: response.output_text.delta\ndata: {json.dumps(data)}\n\n".encode())
    return b"".join(out)


def main() -> int:
    import orjson  # noqa: F401 - the comparison needs it

    from gateway.sse import SSEParser, parse_frame

    big = dict(SMALL_REQUEST, input=[{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": long_text(2000)}]}] * 50)
    g = {"json": json, "orjson": orjson, "small": SMALL_REQUEST, "big": big,
         "small_b": json.dumps(SMALL_REQUEST).encode(), "big_b": json.dumps(big).encode(),
         "enc": json.JSONEncoder(separators=(",", ":")).encode}
    one = sse_events(1)
    many = sse_events(2000)
    g.update(SSEParser=SSEParser, parse_frame=parse_frame, one=one, many=many,
             frame=one[:-2], text=one.split(b"data: ", 1)[1].strip().decode())
    rows = [
        ("request body parse, small (%d B): json.loads" % len(g["small_b"]),
         best("json.loads(small_b)", 20000, g)),
        ("request body parse, small: orjson.loads", best("orjson.loads(small_b)", 20000, g)),
        ("request body parse, %d KB conversation: json.loads" % (len(g["big_b"]) // 1024),
         best("json.loads(big_b)", 200, g)),
        ("request body parse, same: orjson.loads", best("orjson.loads(big_b)", 200, g)),
        ("upstream body, small: json compact dumps", best("enc(small).encode()", 20000, g)),
        ("upstream body, small: orjson.dumps", best("orjson.dumps(small)", 20000, g)),
        ("upstream body, %d KB: json compact dumps" % (len(g["big_b"]) // 1024),
         best("enc(big).encode()", 200, g)),
        ("upstream body, same: orjson.dumps", best("orjson.dumps(big)", 200, g)),
        ("event JSON decode (~180 B): json.loads", best("json.loads(text)", 50000, g)),
        ("event JSON decode: orjson.loads", best("orjson.loads(text)", 50000, g)),
        ("SSE: parse one frame", best("parse_frame(frame)", 50000, g)),
        ("SSE: feed one whole frame (paced upstream)", best("SSEParser().feed(one)", 50000, g)),
        ("SSE: feed 2000 frames in one chunk, per frame",
         best("SSEParser().feed(many)", 20, g) / 2000),
    ]
    rows += usage_rows()
    rows += policy_rows()
    rows += placement_rows()
    rows += prefix_rows()
    rows += upstream_http.piece_rows() + upstream_http.rows()
    print("| hot path | µs per call |\n|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} |")
    return 0


def placement_rows() -> list[tuple[str, float]]:
    """What choosing an account costs a request (``pool.placed``: the account-set
    check, the standings from the health snapshot, the weighted rendezvous), three
    accounts with quota windows stored, quota-aware and by --weight alone."""
    from gateway import config
    from gateway.accounts.pool import AccountPool
    from gateway.state.files import FileStore
    from gateway.state.records import openai_record

    rows = []
    with tempfile.TemporaryDirectory() as state:
        for i in range(3):
            FileStore(state).save(openai_record(f"sk-bench-{i}", label=f"k{i}"))
        for strategy in ("quota", "rendezvous"):
            pool = AccountPool(config.load(env={"CODEX_GATEWAY_ACCOUNTS_STATE_DIR": state,
                                                "CODEX_GATEWAY_PLACEMENT_STRATEGY": strategy}))
            for i, used in enumerate((10, 60, 92)):
                pool.health.record_rate_limits(f"openai-k{i}", {
                    "primary": {"used_percent": used, "window_minutes": 300,
                                "reset_at": time.time() + 4 * 3600}, "observed_at": time.time()})
            g = {"pool": pool}
            pool.placed("k", "gpt-5")
            rows.append((f"account placement, 3 accounts ({strategy}): pool.placed",
                         best("pool.placed('conversation-key', 'gpt-5')", 5000, g)))
    return rows


def usage_rows() -> list[tuple[str, float]]:
    """The usage costs, measured in a child with multiprocess metrics on."""
    with tempfile.TemporaryDirectory() as prom, tempfile.TemporaryDirectory() as state:
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=prom,
                   CODEX_GATEWAY_ACCOUNTS_STATE_DIR=state)
        out = subprocess.run([sys.executable, "-m", "bench.micro", "--usage-child"], env=env,
                             capture_output=True, text=True, check=True)
    return [tuple(row) for row in json.loads(out.stdout)]


def usage_child() -> int:
    """Per finished request: the metrics sink (mmap'd files shared by workers) and
    the usage sink (a deque append); the row conversion runs on the writer thread."""
    from gateway.record import Outcome, RequestRecord
    from gateway.usage.metrics import Metrics
    from gateway.usage.records import row_from_record
    from gateway.usage.writer import UsageWriter

    class NullStore:
        def add(self, rows):
            pass

        def prune(self, before):
            return 0

    metrics = Metrics()
    assert metrics.multiprocess, "PROMETHEUS_MULTIPROC_DIR must be set before the import"
    writer = UsageWriter(NullStore(), queue_size=10**8, flush_seconds=3600)

    def record(sinks=()):
        rec = RequestRecord(dialect="chat", key_id="key-0123456789ab", model_asked="gpt-5-codex",
                            sinks=sinks)
        rec.account, rec.model_sent, rec.continuity_source = "codex-acct", "gpt-5-codex", "x"
        rec.mark_first_byte()
        rec.add_usage({"input_tokens": 1500, "input_tokens_details": {"cached_tokens": 1024},
                       "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 8}})
        return rec

    done = record()
    done.finish(200, Outcome.COMPLETED)
    g = {"metrics": metrics, "writer": writer, "done": done, "record": record,
         "row": row_from_record, "Outcome": Outcome,
         "both": (metrics.sink, writer.sink), "none": ()}
    writer.sink(done)  # starts the writer thread outside the timing
    rows = [
        ("usage: queue sink per request (deque append; request thread)",
         best("writer.sink(done)", 100000, g)),
        ("usage: metrics sink per request (multiprocess files; request thread)",
         best("metrics.sink(done)", 20000, g)),
        ("usage: row from a record (writer thread, off the request)",
         best("row(done)", 50000, g)),
        ("usage: whole recording per request (finish() with both sinks, minus finish() alone)",
         best("record(both).finish(200, Outcome.COMPLETED)", 20000, g)
         - best("record(none).finish(200, Outcome.COMPLETED)", 20000, g)),
    ]
    writer._queue.clear()
    print(json.dumps(rows))
    return 0


def policy_rows() -> list[tuple[str, float]]:
    """What the per-key policy check costs a request (``gateway/policy``), beside a
    key without a policy: the gate's admission on the request thread, and the
    settlement its answer's end queues for the settle thread. SQLite counters
    always; Redis counters when a redis-server is installed."""
    from gateway.policy.counters import SQLiteCounters
    from gateway.policy.gate import Gate
    from gateway.policy.admission import day_window, week_window
    from gateway.policy.model import Policy
    from gateway.policy.store import FilePolicies
    from gateway.record import RequestRecord

    big = 10**9
    limited = Policy(models=("gpt-5.4",), tokens_per_day=big, tokens_per_week=big,
                     requests_per_minute=1000, concurrency=64)
    body = dict(SMALL_REQUEST, model="gpt-5.4")
    rows = []
    with tempfile.TemporaryDirectory() as state:
        policies = FilePolicies(os.path.join(state, "client_keys.policy.json"))
        policies.put("key-limits", limited)
        policies.put("key-models", Policy(models=("gpt-5.4",), expires_at=4e9))
        backends = [("SQLite", SQLiteCounters(os.path.join(state, "policy.sqlite")))]
        redis_srv = _redis()
        if redis_srv is not None:
            from gateway.policy.redis_counters import RedisCounters
            from gateway.state.link import Link
            backends.append(("Redis", RedisCounters(Link(redis_srv.url, 2.0), "bench:")))
        try:
            gate = Gate(policies, backends[0][1])
            g = {"gate": gate, "body": body, "Record": RequestRecord}
            bare = best("Record('responses')", 20000, g)
            rows += [
                ("policy: key without a policy (the check, per request)",
                 best("gate.admit('key-none', 'gpt-5.4', body, Record('responses'))", 20000, g)
                 - bare),
                ("policy: models + expiry only (no counters)",
                 best("gate.admit('key-models', 'gpt-5.4', body, Record('responses'))", 20000, g)
                 - bare),
            ]
            if redis_srv is not None:
                from gateway.policy.store import RedisPolicies
                g.update(gate=Gate(RedisPolicies(backends[1][1].link, "bench:"), None))
                rows.append(("policy: key without a policy, policies in Redis (one GET of "
                             "their change counter)",
                             best("gate.admit('key-none', 'gpt-5.4', body, Record('responses'))",
                                  2000, g) - bare))
            for name, counters in backends:
                # Steady state: each admitted request is settled before the next (a lease
                # or two in flight, not thousands); the minute's log grows to 150 at most.
                g.update(gate=Gate(policies, counters), settle=counters.settle)
                pair = best("r = Record('responses'); gate.admit('key-limits', 'gpt-5.4', body, r);"
                            "p = r.sinks[-1].plan; settle(p.key_id, p.lease_id, 1500, p.buckets, "
                            "p.now)", 30, g)
                settle = best("settle('key-limits', 'x', 1500, buckets, 0.0)", 30,
                              dict(g, buckets=(day_window(0)[0], week_window(0)[0])))
                rows += [
                    (f"policy: every limit set, {name} counters: admission (request thread)",
                     pair - settle),
                    (f"policy: same, {name}: settlement at the answer's end (settle thread)",
                     settle),
                ]
        finally:
            if redis_srv is not None:
                redis_srv.cleanup()
    return rows


def _redis():
    """A throwaway redis-server (tests/redis_server.py), or None when none is installed."""
    from tests.redis_server import RedisServer, find_redis

    binary = find_redis()
    return RedisServer(binary, name="redis-bench").start() if binary else None


def agent_conversation(turns: int = 30) -> tuple[dict, list]:
    """A coding agent's turn after *turns* tool calls (~20 KB instructions, 8 tools,
    1 KB tool outputs) and the answers the gateway kept for it."""
    params = {"type": "object", "properties": {
        "path": {"type": "string", "description": long_text(120)},
        "limit": {"type": "integer"}, "pattern": {"type": "string"}}, "required": ["path"]}
    tools = [{"type": "function", "name": f"tool_{i}", "description": long_text(400),
              "parameters": params, "strict": False} for i in range(8)]
    items, answers = [], []
    for n in range(turns):
        items.append({"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": long_text(200)}]})
        answer = [{"id": f"rs_{n}", "type": "reasoning", "summary": [],
                   "encrypted_content": f"gAAAA{n:04d}" + "x" * 800},
                  {"id": f"fc_{n}", "type": "function_call", "status": "completed",
                   "call_id": f"call_{n}", "name": f"tool_{n % 8}",
                   "arguments": json.dumps({"path": f"src/f{n}.py", "limit": 40})}]
        answers.append(answer)
        items += answer
        items.append({"type": "function_call_output", "call_id": f"call_{n}",
                      "output": long_text(1000)})
    body = {"model": "gpt-5-codex", "instructions": long_text(20000), "tools": tools,
            "input": items}
    return body, answers


def sloppy(body: dict) -> dict:
    """The same turn from a client that drops ids, re-spaces arguments and
    re-orders its tool schemas' keys."""
    out = json.loads(json.dumps(body))
    out["tools"] = [dict(reversed(list(t.items()))) for t in out["tools"]]
    for item in out["input"]:
        item.pop("id", None)
        item.pop("status", None)
        if item.get("type") == "function_call":
            item["arguments"] = json.dumps(json.loads(item["arguments"]), separators=(",", ":"))
    return out


def prefix_rows() -> list[tuple[str, float]]:
    """CPU µs per request spent by gateway.prefix (the body parse is timed with it
    and subtracted: a request parses its body anyway)."""
    import time

    import orjson

    from gateway import jsonio
    from gateway.config import PrefixConfig
    from gateway.prefix.fingerprint import Fingerprint
    from gateway.prefix.repair import tool_key
    from gateway.prefix.store import SQLitePrefixStore
    from gateway.prefix.watch import PrefixWatch, storage_key
    from gateway.record import RequestRecord

    body, answers = agent_conversation()
    previous = dict(body, input=body["input"][:-4])
    tidy_b, sloppy_b = orjson.dumps(body), orjson.dumps(sloppy(body))
    rows = []
    with tempfile.TemporaryDirectory() as state:
        store = SQLitePrefixStore(os.path.join(state, "prefix.sqlite"), 3600, 1000, 8 << 20)
        tools = {tool_key(t): t for t in body["tools"]}
        cases = [("off", PrefixConfig(enabled=False), tidy_b),
                 ("detection only", PrefixConfig(repair=False), tidy_b),
                 ("detection + repair, tidy client", PrefixConfig(), tidy_b),
                 ("detection + repair, sloppy client (all restored)", PrefixConfig(), sloppy_b)]
        sk = storage_key("k")
        for a in answers:
            store.add_answer(sk, jsonio.dumps({"account": None, "items": a}), 64)
        kept = jsonio.dumps({"fp": [Fingerprint.of(previous).as_json()], "tools": tools})

        def turn(watch, raw):
            rec = RequestRecord(dialect="responses")
            body = orjson.loads(raw)  # a request parses its body anyway: in the baseline
            if watch is not None:
                watch.before(body, "k", rec)
            store.put_turns(sk, kept)  # every run meets the same previous turn
            return rec

        def cpu(watch, raw) -> float:
            return min(timeit.repeat(lambda: turn(watch, raw), number=40, repeat=5,
                                     timer=time.process_time)) / 40 * 1e6

        base = cpu(None, tidy_b)
        for name, cfg, raw in cases:
            watch = PrefixWatch(cfg, store)
            got = turn(watch, raw)
            assert got.prefix in (None, "append"), (name, got.prefix, got.cache_break)
            rows.append((f"prefix ({len(tidy_b) // 1024} KB turn, {len(body['input'])} items): "
                         f"{name}, CPU per request", max(0.0, cpu(watch, raw) - base)))
        keep = PrefixWatch(PrefixConfig(), store)
        rows.append(("prefix: keeping an answer's output items (per answer)",
                     min(timeit.repeat(lambda: keep.answered(sk, answers[-1]), number=50,
                                       repeat=5, timer=time.process_time)) / 50 * 1e6))
    return rows


if __name__ == "__main__":
    sys.exit(usage_child() if "--usage-child" in sys.argv else main())
