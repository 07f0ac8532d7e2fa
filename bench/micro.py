"""bench.micro
~~~~~~~~~~~~~~
``python -m bench.micro``: the per-request and per-event hot paths in isolation
(µs per call, best of 5), the numbers behind the JSON and SSE choices in
``gateway/sse.py`` and ``gateway/upstream/transport.py``.
"""
from __future__ import annotations

import json
import sys
import timeit

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
    print("| hot path | µs per call |\n|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
