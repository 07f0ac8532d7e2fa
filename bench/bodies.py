"""bench.bodies
~~~~~~~~~~~~~~~
The upstream answers a bench run serves, captured from the fake upstream.

The fake (``tests.fakes.codex_upstream --fast``) answers real requests once;
its SSE bytes and rate-limit headers are saved and then served by nginx as
static files, so the upstream costs almost nothing and is never the
bottleneck. The fast mode sends a text as one delta; a real model streams a
token or two per delta, so the long answers are re-split into small deltas
(same events, same final response, renumbered ``sequence_number``).
"""
from __future__ import annotations

import json
from pathlib import Path

import requests

from .procs import FakeUpstream, upstream_headers

WORDS = ("the gateway forwards every event as soon as it arrives and keeps the prompt "
         "cache warm across turns so a long answer streams without stalls ").split()
SMALL_REQUEST = {
    "model": "gpt-5-codex",
    "instructions": "You are a concise assistant.",
    "input": [{"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "Say hello."}]}],
}


def long_text(chars: int) -> str:
    out, n = [], 0
    i = 0
    while n < chars:
        word = WORDS[i % len(WORDS)]
        out.append(word)
        n += len(word) + 1
        i += 1
    return " ".join(out)


def frames(body: bytes) -> list[bytes]:
    return [f for f in body.replace(b"\r\n", b"\n").split(b"\n\n") if f.strip()]


def parse(frame: bytes) -> tuple[str, dict]:
    kind, data = "", None
    for line in frame.split(b"\n"):
        if line.startswith(b"event:"):
            kind = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data = json.loads(line[5:].strip())
    return kind, data


def render(kind: str, data: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def split_deltas(body: bytes, size: int) -> tuple[bytes, int]:
    """Re-split every ``output_text.delta`` into *size*-character deltas."""
    out, seq = [], 0
    for frame in frames(body):
        kind, data = parse(frame)
        pieces = [data]
        if kind == "response.output_text.delta":
            text = data["delta"]
            pieces = [{**data, "delta": text[i:i + size]} for i in range(0, len(text), size)]
        for piece in pieces:
            piece["sequence_number"] = seq
            seq += 1
            out.append(render(kind, piece))
    return b"".join(out), seq


def capture(fake: FakeUpstream, reply: str | None) -> tuple[bytes, dict]:
    fake.control("POST", "/_fake/config", {"reply": reply, "fast": True})
    body = dict(SMALL_REQUEST, stream=True, store=False, include=["reasoning.encrypted_content"])
    resp = requests.post(fake.url + "/backend-api/codex/responses", json=body,
                         headers=upstream_headers(), timeout=30)
    resp.raise_for_status()
    headers = {k: v for k, v in resp.headers.items() if k.lower().startswith("x-codex-")}
    return resp.content, headers


def prepare(directory: Path, long_chars: int = 8000, long_delta: int = 4,
            hold_deltas: int = 64) -> dict:
    """Capture small/long/hold answers into *directory*; returns their facts."""
    directory.mkdir(parents=True, exist_ok=True)
    with FakeUpstream("--fast") as fake:
        small, headers = capture(fake, None)
        long_raw, _ = capture(fake, long_text(long_chars))
        hold_text = long_text(hold_deltas * 8)
        hold_raw, _ = capture(fake, hold_text)
    long_body, long_events = split_deltas(long_raw, long_delta)
    hold_body, hold_events = split_deltas(hold_raw, max(1, len(hold_text) // hold_deltas))
    (directory / "small.sse").write_bytes(small)
    (directory / "long.sse").write_bytes(long_body)
    (directory / "hold.sse").write_bytes(hold_body)
    # The reset-at headers are absolute times: keep them in the future.
    headers = {k: v for k, v in headers.items()}
    return {
        "headers": headers,
        "small": {"bytes": len(small), "events": len(frames(small))},
        "long": {"bytes": len(long_body), "events": long_events,
                 "deltas": sum(1 for f in frames(long_body)
                               if parse(f)[0] == "response.output_text.delta")},
        "hold": {"bytes": len(hold_body), "events": hold_events},
    }
