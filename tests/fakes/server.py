"""tests.fakes.server
~~~~~~~~~~~~~~~~~~~
What the fake upstream and the fake OAuth issuer share: a threaded HTTP/1.1
server on a background thread, a request handler with JSON, hand-written
chunked streaming and disconnect-aware waiting, a ``python -m`` entry point
and a small helper to run a fake in a child process.

Chunked encoding is written by hand (rather than by a framework) so the fakes
can also break it on purpose: stop without the terminal chunk, or reset the
socket in the middle of a stream.
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.ws_server import readable

REPO_ROOT = Path(__file__).resolve().parents[2]
_POLL = 0.05  # seconds between checks while waiting; bounds reaction to stop()


class BadRequest(ValueError):
    """The request body could not be read or parsed."""


class RequestHandler(BaseHTTPRequestHandler):
    """One connection. Reads the whole body, then lets the fake dispatch it."""

    protocol_version = "HTTP/1.1"
    server_version = "fake"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - stdout/stderr stay quiet
        pass

    def version_string(self) -> str:
        return self.server_version

    def _handle(self):
        self.url = urlsplit(self.path)
        self.query = dict(parse_qsl(self.url.query))
        self.headers_sent = False
        self.client_closed_at = None
        fake = self.server.fake
        try:
            self.body = self._read_body()
        except BadRequest as exc:
            self.body = b""
            self.close_connection = True
            self.send_json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        try:
            fake.dispatch(self)
        except Exception:  # never let a bug in a fake kill the connection silently
            traceback.print_exc(file=sys.stderr)
            if self.headers_sent:
                self.close_connection = True
            else:
                error = {"message": "fake server error", "type": "server_error"}
                self.send_json(500, {"error": error})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    # -- request --------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def json(self, default=None):
        """The body parsed as JSON; *default* when empty; BadRequest when invalid."""
        if not self.body.strip():
            return default
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadRequest(f"invalid JSON body: {exc}") from None

    def form_or_json(self) -> dict:
        """A JSON object or a url-encoded form, whichever the client sent."""
        if "json" in self.headers.get("Content-Type", "") or self.body.lstrip().startswith(b"{"):
            data = self.json({})
            if not isinstance(data, dict):
                raise BadRequest("body must be a JSON object")
            return data
        return dict(parse_qsl(self.body.decode("utf-8", "replace")))

    def bearer(self) -> str:
        """The token of an ``Authorization: Bearer`` header, or ""."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    # -- response -------------------------------------------------------------

    def _send_head(self, status: int, headers: dict):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.end_headers()
        self.headers_sent = True

    def send_json(self, status: int, obj, headers: dict | None = None):
        data = json.dumps(obj).encode()
        head = {"Content-Type": "application/json", "Content-Length": len(data), **(headers or {})}
        self._send_head(status, head)
        self._write(data)

    def send_redirect(self, location: str):
        self._send_head(302, {"Location": location, "Content-Length": 0})

    def start_chunked(self, status: int, headers: dict):
        # Each chunk leaves at once, as a streaming backend flushes its events (Nagle
        # would hold a small chunk for the peer's delayed ACK: ~40 ms).
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._send_head(status, {**headers, "Transfer-Encoding": "chunked"})

    def write_chunk(self, data: bytes) -> bool:
        return self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> bool:
        return self._write(b"0\r\n\r\n")

    def _write(self, data: bytes) -> bool:
        """Send *data*; a failed write means the client went away."""
        try:
            self.wfile.write(data)
            return True
        except OSError:
            self._client_gone()
            return False

    def close(self, reset: bool = False):
        """Drop the connection without finishing the response.

        With *reset*, ``SO_LINGER`` 0 makes the kernel send RST instead of FIN,
        so the client sees a connection reset in the middle of its read.
        """
        self.close_connection = True
        try:
            if reset:
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass

    # -- disconnects ----------------------------------------------------------

    def _client_gone(self):
        self.close_connection = True
        if self.client_closed_at is None:
            self.client_closed_at = time.time()

    def _peer_closed(self) -> bool:
        """True when the client has closed its side (EOF or error on peek)."""
        try:
            closed = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            closed = True
        if closed:
            self._client_gone()
        return closed

    def wait(self, seconds: float) -> bool:
        """Sleep *seconds* while watching the socket; False if the client left.

        A client that closes its connection makes the socket readable with EOF,
        so ``select`` wakes up at once and a streaming fake stops within
        milliseconds, as the real backend would. Also False when the server
        is stopping, so stalled streams do not outlive ``stop()``.
        """
        deadline = time.monotonic() + max(seconds, 0)
        while True:
            if self._peer_closed():
                return False
            if self.server.fake.stopping.is_set():
                self.close()
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if readable(self.connection, min(remaining, _POLL)) and not self._peer_closed():
                time.sleep(min(remaining, _POLL))  # unexpected bytes: do not spin


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, fake):
        self.fake = fake
        super().__init__(address, RequestHandler)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeServer:
    """Base of the fakes: lifecycle, routing and the command line.

    Subclasses fill ``self.routes`` with ``(method, path) -> handler(req)``.
    """

    description = "fake server"

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host = host
        self._requested_port = port
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.routes: dict = {("GET", "/_fake/health"): self._health}
        self._httpd = None
        self._thread = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._requested_port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self):
        """Bind and serve on a daemon thread; returns self for chaining."""
        self.stopping.clear()
        self._httpd = _HTTPServer((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": _POLL},
            name=f"{type(self).__name__}:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        """Stop accepting, wake every waiting stream and close the socket."""
        if self._httpd is None:
            return
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._requested_port = self._httpd.server_address[1]
        self._httpd = None

    def __enter__(self):
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc_info):
        self.stop()

    def dispatch(self, req: RequestHandler):
        route = self.routes.get((req.command, req.url.path))
        if route is None:
            message = f"Unknown route: {req.command} {req.url.path}"
            req.send_json(404, {"error": {"message": message, "type": "invalid_request_error",
                                          "code": "not_found"}})
            return
        route(req)

    def control(self, func):
        """Wrap ``func(payload) -> result`` as a JSON control-API route.

        The payload is the JSON body merged over the query parameters.
        """
        def route(req: RequestHandler):
            try:
                payload = req.json({})
                if not isinstance(payload, dict):
                    raise BadRequest("control payload must be a JSON object")
                req.send_json(200, func({**req.query, **payload}))
            except (ValueError, TypeError, KeyError) as exc:
                req.send_json(400, {"error": {"message": f"{type(exc).__name__}: {exc}",
                                              "type": "invalid_request_error"}})
        return route

    def _health(self, req):
        req.send_json(200, {"ok": True, "port": self.port})

    # -- command line ---------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser):
        """Subclasses add their own flags."""

    @classmethod
    def from_args(cls, args: argparse.Namespace):
        return cls(port=args.port, host=args.host)

    @classmethod
    def main(cls, argv=None):
        """Serve until SIGTERM/SIGINT after printing ``ready <port>``."""
        parser = argparse.ArgumentParser(description=cls.description)
        parser.add_argument("--port", type=int, default=0)
        parser.add_argument("--host", default="127.0.0.1")
        cls.add_arguments(parser)
        fake = cls.from_args(parser.parse_args(argv)).start()
        done = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: done.set())
        print(f"ready {fake.port}", flush=True)
        while not done.wait(0.5):
            pass
        fake.stop()


class FakeProcess:
    """A fake running as ``python -m <module>`` in a child process.

    ``request(method, path, payload)`` drives its ``/_fake/`` control API with
    the stdlib only, so out-of-process fakes are as controllable as in-process
    ones.
    """

    def __init__(self, module: str, *args: str, port: int = 0, timeout: float = 10):
        cmd = [sys.executable, "-m", module, "--port", str(port), *args]
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        line = _readline(self.proc, timeout)
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"{module} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, payload=None, timeout: float = 10):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()!r}") from None

    def stop(self, timeout: float = 5):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """First stdout line of *proc*, or "" if none comes within *timeout*."""
    return proc.stdout.readline().strip() if readable(proc.stdout, timeout) else ""
