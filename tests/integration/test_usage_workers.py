"""Usage and metrics under real gunicorn: totals across 4 workers agree with what the
upstream reported, to the token; dead workers drop their live gauges; a store that cannot
be written costs one log line and a counter, never a request."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import key_id
from tests.support import ROOT, register_secret

from tests.support import CLIENT_KEY, LONG_SYSTEM, gateway_env

SECOND_KEY = register_secret("test-client-key-second-98765")
ADMIN_KEY = register_secret("test-admin-key-integration-4242")
BOTH_KEYS = f"{CLIENT_KEY},{SECOND_KEY}"


def scrape(gw, key=ADMIN_KEY) -> dict:
    resp = requests.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {key}"},
                        timeout=10)
    assert resp.status_code == 200, resp.text
    out: dict = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(found: dict, name: str, **labels) -> float:
    return sum(v for ls, v in found.get(name, []) if all(ls.get(k) == x for k, x in labels.items()))


def wait_for(fn, timeout=15.0, every=0.1):
    """Poll *fn* until it returns a truthy value (bounded; no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def usage_json(gw, *args) -> list:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "usage", "--json", *args],
                         cwd=ROOT, env=gw.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def one_request(gw, i: int) -> int:
    """Request *i* of 40: two keys × two endpoints × stream or not; twenty conversations
    of two turns each, whose second turn hits the upstream's prompt cache."""
    key = (CLIENT_KEY, SECOND_KEY)[i % 2]
    endpoint = ("/v1/responses", "/v1/chat/completions")[(i // 2) % 2]
    stream = bool((i // 4) % 2)
    conv = f"conv-{i % 10}-{endpoint.rsplit('/', 1)[-1]}"
    if endpoint == "/v1/responses":
        body = {"model": "gpt-5-codex", "instructions": LONG_SYSTEM, "input": f"{conv} hello",
                "prompt_cache_key": conv, "stream": stream}
    else:
        body = {"model": "gpt-5-codex", "stream": stream, "prompt_cache_key": conv,
                "messages": [{"role": "system", "content": LONG_SYSTEM},
                             {"role": "user", "content": f"{conv} hello"}]}
        if stream:
            body["stream_options"] = {"include_usage": True}
    resp = requests.post(gw.url + endpoint, json=body, timeout=30, stream=stream,
                         headers={"Authorization": f"Bearer {key}", "Connection": "close"})
    data = resp.content  # reads a stream to its end
    assert b"error" not in data[-300:] or resp.status_code != 200, data[-300:]
    return resp.status_code


def worker_pids(gw) -> list[int]:
    text = Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_forty_requests_on_four_workers_add_up_to_the_token(gateway_factory, upstream, tmp_path):
    metrics_dir = tmp_path / "prom"
    # Spread is made certain, not left to the kernel: each worker holds at most two
    # connections (GUNICORN_CMD_ARGS overrides the config file) and each answer lasts a
    # while, so eight requests in flight need at least four workers' slots. A free-running
    # worker on a small CI machine once accepted all forty.
    upstream.configure(event_delay=0.02)
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_AUTH_CLIENT_KEYS=BOTH_KEYS,
                      CODEX_GATEWAY_AUTH_ADMIN_KEYS=ADMIN_KEY, PROMETHEUS_MULTIPROC_DIR=metrics_dir,
                      GUNICORN_CMD_ARGS="--worker-connections 2")
    gw = gateway_factory(env, workers=4, threads=2)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: one_request(gw, i), range(40)))
    assert statuses == [200] * 40
    served = [r for r in upstream.requests if r["path"].endswith("/responses")]
    assert len(served) == 40 and all(r["status"] == 200 for r in served)
    reported = {"cached": sum(r["cached_tokens"] for r in served),
                "input": sum(r["input_tokens"] for r in served)}
    assert reported["cached"] > 0  # later turns of each conversation hit the cache

    found = scrape(gw)
    assert total(found, "codex_gateway_requests_total") == 40
    assert total(found, "codex_gateway_requests_total", status="200", outcome="completed") == 40
    assert total(found, "codex_gateway_tokens_total", kind="cached") == reported["cached"]
    assert total(found, "codex_gateway_tokens_total", kind="input") == reported["input"]
    for key in (CLIENT_KEY, SECOND_KEY):
        assert total(found, "codex_gateway_requests_total", key_id=key_id(key)) == 20
    for dialect in ("responses", "chat"):
        assert total(found, "codex_gateway_request_duration_seconds_count", dialect=dialect) == 20
    assert total(found, "codex_gateway_open_streams") == 0
    pids = {p.name.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
    assert len(pids) >= 2, f"the requests should have been spread over several workers: {pids}"

    def stored():
        rows = usage_json(gw, "--by", "key", "--since", "1h")
        return rows if sum(r["requests"] for r in rows) == 40 else None
    rows = wait_for(stored)
    assert rows, "usage rows did not reach the store within the bounded wait"
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == {key_id(CLIENT_KEY), key_id(SECOND_KEY)}
    assert all(r["requests"] == 20 and r["errors"] == 0 for r in rows)
    assert sum(r["cached_tokens"] for r in rows) == reported["cached"]
    assert sum(r["input_tokens"] for r in rows) == reported["input"]
    assert sum(r["output_tokens"] for r in rows) == total(found, "codex_gateway_tokens_total",
                                                          kind="output")
    (day,) = usage_json(gw, "--by", "day")
    assert day["requests"] == 40 and day["cached_tokens"] == reported["cached"]
    assert day["cache_hit_ratio"] == round(reported["cached"] / reported["input"], 4)

    for path in ("/metrics", "/status"):
        assert requests.get(gw.url + path, timeout=10).status_code == 401
        for key in (CLIENT_KEY, SECOND_KEY):
            resp = requests.get(gw.url + path, headers={"Authorization": f"Bearer {key}"},
                                timeout=10)
            assert resp.status_code == 403 and resp.json()["error"]["code"] == "admin_key_required"
    assert ADMIN_KEY not in gw.logs() and CLIENT_KEY not in gw.logs()


def test_a_dead_workers_open_streams_disappear_and_totals_stay(gateway_factory, upstream,
                                                                tmp_path):
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_AUTH_ADMIN_KEYS=ADMIN_KEY)
    gw = gateway_factory(env, workers=2, threads=8)
    for i in range(4):
        assert one_request(gw, i * 4) == 200  # non-streaming /v1/responses, first key
    upstream.inject("stall", seconds=30)
    body = {"model": "gpt-5-codex", "input": "hold on", "stream": True}
    held = requests.post(gw.url + "/v1/responses", json=body, stream=True, timeout=30,
                         headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert held.status_code == 200
    assert wait_for(lambda: total(scrape(gw), "codex_gateway_open_streams") == 1)
    before = worker_pids(gw)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    held.close()
    assert wait_for(lambda: len(set(worker_pids(gw)) - set(before)) == 2)
    found = wait_for(lambda: (lambda f: f if total(f, "codex_gateway_open_streams") == 0
                              else None)(scrape(gw)))
    assert found, "a killed worker's open stream is still counted"
    assert total(found, "codex_gateway_requests_total") == 4  # counters never go backwards


def readonly_prefix(directory: Path) -> tuple[str, ...]:
    """Run gunicorn with *directory* read-only: a read-only bind mount in a mount namespace
    of its own as root (root ignores file modes), a 0500 directory otherwise."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        return ()
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(directory))


def test_a_store_that_cannot_be_written_loses_rows_not_requests(gateway_factory, upstream,
                                                                 tmp_path):
    ro = tmp_path / "usage-ro"
    ro.mkdir()
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_AUTH_CLIENT_KEYS=BOTH_KEYS,
                      CODEX_GATEWAY_AUTH_ADMIN_KEYS=ADMIN_KEY,
                      CODEX_GATEWAY_USAGE_PATH=ro / "usage.sqlite")
    try:
        gw = gateway_factory(env, workers=1, threads=8, prefix=readonly_prefix(ro))
        started = time.monotonic()
        statuses = [one_request(gw, i) for i in range(8)]
        assert statuses == [200] * 8
        assert time.monotonic() - started < 20  # nothing waited on the store
        found = wait_for(lambda: (lambda f: f if total(
            f, "codex_gateway_usage_rows_dropped_total", reason="store_error") == 8 else None)(
                scrape(gw)))
        assert found, "the lost usage rows were not counted"
        assert total(found, "codex_gateway_requests_total") == 8
        assert total(found, "codex_gateway_usage_rows_written_total") == 0
        lines = [line for line in gw.logs().splitlines() if "cannot be written" in line]
        assert len(lines) == 1, lines
        assert "requests are still served" in lines[0]
        assert not (ro / "usage.sqlite").exists()
    finally:
        ro.chmod(0o700)
