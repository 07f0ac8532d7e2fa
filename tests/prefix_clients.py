"""tests.prefix_clients
~~~~~~~~~~~~~~~~~~~~~~~~
The "sloppy client" harness of the cache-break tests (issue 26), shared by the
in-process and the gunicorn tier: a Responses client that keeps its own history
and, when sloppy, re-serialises call arguments (keys shuffled, no spaces) and
tool schemas (keys shuffled) every turn and drops ids; and the same client sent
straight to the fake upstream with the gateway's envelope.
"""
from __future__ import annotations

import json
import random

import requests

from tests.support import parse_sse

INSTRUCTIONS = ("You are a careful coding agent. Read before you write. " * 120).strip()
PARAMS = {"type": "object", "properties": {
    "path": {"type": "string", "description": "A file path relative to the workspace root."},
    "limit": {"type": "integer", "description": "How many lines to read at most."},
    "offset": {"type": "integer", "description": "The first line to read (1-based)."},
    "encoding": {"type": "string", "enum": ["utf-8", "latin-1"]}},
    "required": ["path", "limit"], "additionalProperties": False}
TOOLS = [{"type": "function", "name": n, "description": f"The {n} tool. " * 8,
          "parameters": PARAMS, "strict": False} for n in ("read_file", "list_dir", "grep")]
OUTPUT = "line of a file that the tool read back to the model\n" * 40
# The conversation: user asks for a call, the tool answers, the model says something.
SCRIPT = [
    '[[call:read_file {"path": "a.py", "limit": 10, "offset": 1}]]',
    '[[call:grep {"path": "src", "limit": 5}]]',
    '[[call:list_dir {"path": ".", "limit": 50, "encoding": "utf-8"}]]',
    '[[call:read_file {"path": "b.py", "limit": 20}]]',
]


def shuffled(value, rng: random.Random):
    """*value* with every object's keys in a random order (same JSON value)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


class Client:
    """A Responses client that keeps its own history; ``sloppy`` re-serialises
    arguments (keys shuffled, no spaces) and tool schemas each turn and drops ids."""

    def __init__(self, send, sloppy: bool, seed: int = 7):
        self.send, self.sloppy = send, sloppy
        self.rng = random.Random(seed)
        self.history: list = []
        self.turn = 0

    def _tools(self):
        return shuffled(TOOLS, self.rng) if self.sloppy and self.turn > 1 else TOOLS

    def _keep(self, item: dict) -> dict:
        if not self.sloppy:
            return item
        item = {k: v for k, v in item.items() if k not in ("id", "status")}
        if item.get("type") == "function_call":
            item["arguments"] = json.dumps(shuffled(json.loads(item["arguments"]), self.rng),
                                           separators=(",", ":"))
        if item.get("type") == "message":
            item["content"] = [{k: v for k, v in p.items() if k != "annotations"}
                               for p in item["content"]]
        return item

    def _resend(self):
        """What a sloppy client does with its history each turn: re-serialise it."""
        if self.sloppy:
            self.history = [self._keep(i) if i.get("type") == "function_call" else i
                            for i in self.history]

    def step(self, new_items: list) -> dict:
        self.turn += 1
        self._resend()
        self.history += new_items
        body = {"model": "gpt-5-codex", "instructions": INSTRUCTIONS, "tools": self._tools(),
                "input": list(self.history), "reasoning": {"effort": "low"}}
        output, usage = self.send(body)
        self.history += [self._keep(i) for i in output]
        return usage

    def run(self) -> list[int]:
        """The script: each user turn asks for a call, the next turn carries its
        output; returns cached tokens per turn."""
        cached = []
        for text in SCRIPT:
            usage = self.step([{"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": text}]}])
            cached.append(usage["input_tokens_details"]["cached_tokens"])
            call = self.history[-1]
            assert call["type"] == "function_call", call
            usage = self.step([{"type": "function_call_output", "call_id": call["call_id"],
                                "output": OUTPUT}])
            cached.append(usage["input_tokens_details"]["cached_tokens"])
        return cached


def direct(upstream, envelope):
    """The same client straight to the fake Codex backend, with the envelope the
    gateway used (account, token, prompt_cache_key, session header)."""
    def send(body):
        body = dict(body, stream=True, store=False, include=["reasoning.encrypted_content"],
                    prompt_cache_key=envelope["key"])
        resp = requests.post(upstream.base_url + "/backend-api/codex/responses", json=body,
                             headers=envelope["headers"], timeout=30)
        assert resp.status_code == 200, resp.text
        return answer_of(resp.content)
    return send


def answer_of(sse: bytes) -> tuple[list, dict]:
    """A streamed answer's output items and usage."""
    events, _ = parse_sse(sse)
    output = [e.data["item"] for e in events if e.type == "response.output_item.done"]
    final = next(e.data["response"] for e in events if e.type == "response.completed")
    return output, final["usage"]


def envelope_of(record: dict) -> dict:
    h = record["headers"]
    return {"key": record["body"]["prompt_cache_key"],
            "headers": {"Authorization": h["Authorization"],
                        "chatgpt-account-id": h["chatgpt-account-id"],
                        "session_id": h["session_id"]}}
