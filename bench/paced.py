"""bench.paced
~~~~~~~~~~~~~~
A tiny upstream that streams a captured SSE answer one event per write with a
pause between events, the way a model emits tokens (``python -m bench.paced
--port N --bodies DIR``).

nginx serves a whole answer in one burst, so the gateway reads hundreds of
events per ``read``; a real upstream sends one event (or a few) per read, and
each then costs the gateway a read, a hand-over and a write. This server
produces that pattern. The answer is chosen by the ``x-codex-bench`` request
header and the pause by ``x-codex-bench-gap`` (milliseconds); the gateway
forwards both because they are ``x-codex-*`` headers.

asyncio, one process, no dependencies; ``ready <port>`` on stdout when listening.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n%s\r\n")


def split_events(body: bytes) -> list[bytes]:
    return [f + b"\n\n" for f in body.split(b"\n\n") if f.strip()]


class Paced:
    def __init__(self, bodies: Path, extra_headers: bytes):
        self.bodies = {p.stem: split_events(p.read_bytes()) for p in bodies.glob("*.sse")}
        self.extra = extra_headers
        self.open_streams = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0") or 0)
                if length:
                    await reader.readexactly(length)
                events = self.bodies.get(headers.get(b"x-codex-bench", b"small").decode(),
                                         self.bodies["small"])
                gap = float(headers.get(b"x-codex-bench-gap", b"1") or 1) / 1000.0
                self.open_streams += 1
                try:
                    writer.write(HEAD % self.extra)
                    for i, event in enumerate(events):
                        if i and gap > 0:
                            await asyncio.sleep(gap)
                        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                        await writer.drain()
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                finally:
                    self.open_streams -= 1
                if headers.get(b"connection", b"").lower() == b"close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                ValueError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def serve(port: int, bodies: Path, headers: list[str]) -> None:
    extra = b"".join(h.encode() + b"\r\n" for h in headers)
    app = Paced(bodies, extra)
    server = await asyncio.start_server(app.handle, "127.0.0.1", port, backlog=4096,
                                        reuse_port=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--header", action="append", default=[],
                        help="extra response header 'Name: value' (repeatable)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.bodies, args.header))


if __name__ == "__main__":
    main()
