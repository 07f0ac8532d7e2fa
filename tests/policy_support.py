"""The per-key policy checks, run the same way on one gateway with 4 workers
(tests/integration/test_policy_workers.py) and on two instances sharing Redis
(tests/deploy/test_redis_instances.py). A :class:`Site` is where requests go
(they alternate over its URLs) and how a key is created on it."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from websockets.sync.client import connect

from gateway.auth import hash_key, key_id
from tests.support import LONG_SYSTEM, ROOT, register_secret

BUDGET = 20000


@dataclass
class Site:
    urls: list[str]          # one per instance; requests alternate over them
    envs: list[dict]         # each instance's environment (its CLI runs with it)
    upstream: object
    _turn: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self) -> str:
        with self._lock:
            self._turn += 1
            return self.urls[self._turn % len(self.urls)]

    def cli(self, *args, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT,
                              env=env or self.envs[0], capture_output=True, text=True,
                              timeout=30)

    def create_key(self, name: str, *flags: str) -> str:
        """``keys create`` on the first instance; the key's line is added to every other
        instance's keys file (client keys stay per instance; the policy is shared)."""
        out = self.cli("keys", "create", "--name", name, *flags)
        assert out.returncode == 0, out.stderr
        key = register_secret(out.stdout.split()[0])
        for env in self.envs[1:]:
            path = Path(env["CODEX_GATEWAY_ACCOUNTS_STATE_DIR"]) / "client_keys"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                fh.write(f"{name} {hash_key(key)}\n")
        return key

    def post(self, path: str, body: dict, key: str, stream: bool = False,
             url: str | None = None) -> requests.Response:
        return requests.post((url or self.url()) + path, json=body, stream=stream, timeout=30,
                             headers={"Authorization": f"Bearer {key}", "Connection": "close"})

    def ws(self, key: str, url: str | None = None):
        base = (url or self.url()).replace("http://", "ws://")
        return connect(base + "/v1/responses", open_timeout=10, close_timeout=2,
                       additional_headers={"Authorization": f"Bearer {key}"})

    def sent_by(self, key: str) -> list[dict]:
        """The upstream requests of *key* (its conversations are named after it)."""
        return [r for r in self.upstream.requests if key_id(key) in json.dumps(r["body"] or {})]


def body(key: str, i: int = 0, model: str = "gpt-5-codex", **extra) -> dict:
    return {"model": model, "instructions": LONG_SYSTEM, "input": f"{key_id(key)} request {i}",
            **extra}


def ws_turn(ws, model: str, key: str) -> list[dict]:
    ws.send(json.dumps({"type": "response.create", "model": model, "store": False,
                        "instructions": "Be brief.", "input": [
                            {"type": "message", "role": "user", "content": [
                                {"type": "input_text", "text": f"{key_id(key)} over ws"}]}]}))
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=15)))
        if frames[-1]["type"] in ("response.completed", "response.failed", "error"):
            return frames


# -- the checks -------------------------------------------------------------------------

def check_token_budget(site: Site) -> dict:
    """--tokens-per-day 20000, eight clients at once until the budget is spent: the
    charged tokens end at most one request's tokens past it."""
    key = site.create_key("budget", "--tokens-per-day", str(BUDGET))
    spent: list[int] = []
    refusals: list[str] = []

    def client(n: int) -> None:
        for i in range(100):
            resp = site.post("/v1/responses", body(key, n * 100 + i), key)
            if resp.status_code == 200:
                usage = resp.json()["usage"]
                spent.append(usage["input_tokens"] + usage["output_tokens"])
                continue
            assert resp.status_code == 429, resp.text
            assert int(resp.headers["Retry-After"]) >= 1
            message = resp.json()["error"]["message"]
            refusals.append(message)
            if "is spent" in message:
                return
            time.sleep(0.05)  # the rest is reserved by answers in flight: retry soon

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    one = max(spent)
    assert BUDGET <= sum(spent) <= BUDGET + one, (sum(spent), one)
    assert len(site.sent_by(key)) == len(spent)  # no refusal reached the upstream
    assert all("20000 tokens per day" in m for m in refusals)
    return {"requests": len(spent), "tokens": sum(spent), "one_request": one}


def check_requests_per_minute(site: Site) -> list[int]:
    """--requests-per-minute 30: forty requests at once, exactly thirty go through."""
    key = site.create_key("rpm", "--requests-per-minute", "30")
    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(
            lambda i: site.post("/v1/responses", body(key, i), key).status_code, range(40)))
    assert time.time() - started < 55  # all forty fell inside one minute
    assert sorted(statuses) == [200] * 30 + [429] * 10, statuses
    assert len(site.sent_by(key)) == 30
    return statuses


def check_concurrency(site: Site) -> None:
    """--concurrency 2: two streams open, the third is refused at once."""
    key = site.create_key("pair", "--concurrency", "2")
    site.upstream.configure(silence=30.0)  # answers wait after response.in_progress
    try:
        streams = [site.post("/v1/responses", body(key, i, stream=True), key, stream=True)
                   for i in range(2)]
        readers = [s.iter_content(chunk_size=None) for s in streams]  # kept: left open
        for s, reader in zip(streams, readers):
            assert s.status_code == 200
            seen = b""
            while b"response.in_progress" not in seen:
                seen += next(reader)
        third = site.post("/v1/responses", body(key, 2, stream=True), key, stream=True)
        assert third.status_code == 429 and third.headers["Retry-After"] == "1", \
            (third.status_code, third.headers, third.content[:300])
        assert "2 answers in flight" in third.json()["error"]["message"]
        assert len(site.sent_by(key)) == 2
    finally:
        site.upstream.configure(silence=0.0)
        for s in streams:
            s.close()


def check_expired(site: Site) -> None:
    key = site.create_key("expired")
    assert site.post("/v1/responses", body(key), key).status_code == 200
    out = site.cli("keys", "update", "expired", "--expires", "2020-01-01")
    assert out.returncode == 0, out.stderr
    for _ in range(len(site.urls)):  # every instance, from its next request
        resp = site.post("/v1/responses", body(key, 1), key)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "key_expired"
    assert len(site.sent_by(key)) == 1


def check_models(site: Site) -> None:
    """--models gpt-5.4: another model is 403 in Responses, Chat, Messages and on a
    live WebSocket; none of them reaches the upstream."""
    key = site.create_key("only-54", "--models", "gpt-5.4")
    asks = [("/v1/responses", body(key, 0)),
            ("/v1/chat/completions", {"model": "gpt-5-codex", "messages": [
                {"role": "user", "content": f"{key_id(key)} chat"}]}),
            ("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [
                {"role": "user", "content": f"{key_id(key)} messages"}]})]
    for path, ask in asks:
        resp = requests.post(site.url() + path, json=ask, timeout=30, headers={
            "Authorization": f"Bearer {key}", "x-api-key": key})
        assert resp.status_code == 403, (path, resp.text)
        assert "Allowed: gpt-5.4" in resp.json()["error"]["message"]
    for url in site.urls:
        with site.ws(key, url) as ws:
            frames = ws_turn(ws, "gpt-5-codex", key)
            assert frames == [{"type": "error", "status": 403, "error": {
                "type": "permission_error", "code": "model_not_allowed", "param": "model",
                "message": frames[0]["error"]["message"]}}]
            assert "Allowed: gpt-5.4" in frames[0]["error"]["message"]
            assert ws_turn(ws, "gpt-5.4", key)[-1]["type"] == "response.completed"
    assert [r["body"]["model"] for r in site.sent_by(key)] == ["gpt-5.4"] * len(site.urls)


def check_quota_visibility(site: Site) -> None:
    """A default key sees no account quota (headers, WebSocket events, /v1/usage);
    a --show-quota key gets the x-codex-* headers on a streamed Responses answer and
    codex.rate_limits over the WebSocket."""
    plain = site.create_key("plain")
    owner = site.create_key("owner", "--show-quota")
    site.upstream.configure(rate_limit_events=True)
    try:
        for key, shown in ((plain, False), (owner, True)):
            for url in site.urls:
                resp = site.post("/v1/responses", body(key, stream=True), key, stream=True,
                                 url=url)
                data = resp.content
                quota = {h.lower() for h in resp.headers if h.lower().startswith("x-codex-")} \
                    - {"x-codex-turn-state"}
                assert ("x-codex-primary-used-percent" in quota) is shown, resp.headers
                assert (b"codex.rate_limits" in data) is shown
                with site.ws(key, url) as ws:
                    frames = ws_turn(ws, "gpt-5-codex", key)
                kinds = [f["type"] for f in frames]
                assert ("codex.rate_limits" in kinds) is shown, kinds
                usage = requests.get(url + "/v1/usage", timeout=10,
                                     headers={"Authorization": f"Bearer {key}"})
                assert usage.status_code == 200
                assert ("used_percent" in usage.text) is shown
        # The quota in answer headers only: over the client WebSocket the gateway says it
        # in a codex.rate_limits event of its own, to the --show-quota key only.
        site.upstream.configure(rate_limit_events=False)
        for url in site.urls:
            with site.ws(owner, url) as ws:
                frames = ws_turn(ws, "gpt-5-codex", owner)
            event = next(f for f in frames if f["type"] == "codex.rate_limits")
            assert event["rate_limits"]["primary"]["used_percent"] == 12.0
            with site.ws(plain, url) as ws:
                frames = ws_turn(ws, "gpt-5-codex", plain)
            assert "codex.rate_limits" not in [f["type"] for f in frames]
    finally:
        site.upstream.configure(rate_limit_events=False)


def wait_for(fn, timeout=15.0):
    """Poll *fn* until it returns a truthy value (bounded; no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def check_reports_agree(site: Site) -> dict:
    """``keys list --json`` and ``GET /v1/usage`` (on every instance) say what the
    usage rows say."""
    key = site.create_key("report", "--tokens-per-day", "1m", "--requests-per-minute", "100")
    for i in range(6):
        resp = site.post("/v1/responses", body(key, i, stream=bool(i % 2)), key,
                         stream=bool(i % 2))
        assert resp.status_code == 200
        resp.content
    ident = key_id(key)

    def rows():
        today = time.strftime("%Y-%m-%d", time.gmtime())
        out = site.cli("usage", "--json", "--by", "key", "--since", today)
        found = [r for r in json.loads(out.stdout) if r.get("key") == ident]
        return found if found and found[0]["requests"] == 6 else None

    row = wait_for(rows)
    assert row, "the usage rows never showed the six requests"
    row = row[0]
    tokens = row["input_tokens"] + row["output_tokens"]

    def listed():
        out = site.cli("keys", "list", "--json")
        found = [r for r in json.loads(out.stdout) if r["id"] == ident][0]
        return found if found["limits"]["tokens_per_day"]["used"] == tokens else None

    entry = wait_for(listed)
    assert entry, "the counters never caught up with the usage rows"
    for url in site.urls:
        mine = requests.get(url + "/v1/usage", timeout=10,
                            headers={"Authorization": f"Bearer {key}"}).json()
        for report in (entry, mine):
            assert report["today"]["requests"] == row["requests"] == 6
            assert report["today"]["input_tokens"] == row["input_tokens"]
            assert report["today"]["output_tokens"] == row["output_tokens"]
            assert report["limits"]["tokens_per_day"]["used"] == tokens
            assert report["limits"]["tokens_per_day"]["remaining"] == 1000000 - tokens
        assert mine["id"] == ident and mine["name"] == "report"
    return {"tokens": tokens}
