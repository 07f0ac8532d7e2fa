"""Cache-break detection and repair under real gunicorn: the turns of one
conversation are spread over three workers (a new connection each), which share
the key's memory (``prefix.sqlite``), so a sloppy client is repaired whichever
worker serves it; breaks and repairs reach ``/metrics`` and ``codex-gateway
usage`` from every worker."""
from __future__ import annotations

import json
import subprocess
import sys

import requests

from tests.prefix_clients import INSTRUCTIONS, TOOLS, Client, answer_of, direct, envelope_of
from tests.support import CLIENT_KEY, ROOT, gateway_env, register_secret

ADMIN_KEY = register_secret("test-admin-key-prefix-7070")


def through(gw, repaired: list):
    def send(body):
        resp = requests.post(gw.url + "/v1/responses", timeout=30, headers={
            "Authorization": f"Bearer {CLIENT_KEY}", "Connection": "close"},  # a new worker each
            json=dict(body, prompt_cache_key="conv-w", stream=True))
        assert resp.status_code == 200, resp.text
        repaired.append(resp.headers.get("x-gateway-repaired"))
        return answer_of(resp.content)
    return send


def metric(gw, name: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families
    text = requests.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                        timeout=10).text
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


def test_workers_share_the_memory_and_report_breaks(gateway_factory, upstream, tmp_path):
    gw = gateway_factory(gateway_env(upstream, tmp_path, CODEX_GATEWAY_SERVER_WORKERS=3,
                                     CODEX_GATEWAY_AUTH_ADMIN_KEYS=ADMIN_KEY,
                                     CODEX_GATEWAY_USAGE_FLUSH_SECONDS=0.05))
    repaired: list = []
    client = Client(through(gw, repaired), sloppy=True)
    cached = client.run()
    assert repaired[0] is None and all(n and int(n) > 0 for n in repaired[1:]), repaired
    env = envelope_of(upstream.requests[-1])
    upstream.reset()
    alone = Client(direct(upstream, env), sloppy=True).run()
    assert sum(cached) >= 1.5 * sum(alone), (cached, alone)

    # an edited earlier message: one content break, counted by whichever worker served it
    history = json.loads(json.dumps(client.history))
    history[0]["content"][0]["text"] += " (edited)"
    send = through(gw, repaired)
    send({"model": "gpt-5-codex", "instructions": INSTRUCTIONS, "tools": TOOLS,
          "input": history, "reasoning": {"effort": "low"}})
    breaks = metric(gw, "codex_gateway_cache_breaks_total")
    assert breaks == {(("cause", c),): (1.0 if c == "content" else 0.0)
                      for c in ("instructions", "tools", "content", "removed", "order")}
    assert sum(metric(gw, "codex_gateway_cache_repaired_items_total").values()) == \
        sum(int(n) for n in repaired if n)

    def usage() -> dict:
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "usage", "--json",
                              "--by", "key"], cwd=ROOT, env=gw.env, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        (row,) = json.loads(out.stdout)
        return row
    from tests.integration.test_usage_workers import wait_for
    row = wait_for(lambda: (r := usage())["requests"] == len(cached) + 1 and r)
    assert row["cache_breaks"] == 1 and row["cache_break_causes"] == {"content": 1}
    assert row["repaired_items"] == sum(int(n) for n in repaired if n)
