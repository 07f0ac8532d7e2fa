"""gateway.state.link
~~~~~~~~~~~~~~~~~~~~~~
One Redis client per process, and what the process knows about reaching it.

Every Redis call of the gateway goes through :meth:`Link.run`, which turns
any Redis failure into :class:`~.errors.StateUnavailable` and keeps an outage
cheap for the requests that run through it: after a failure, only one thread
tries again, once a second (``RETRY_INTERVAL``); the others are told at once
and serve from memory. The client's own retry is a single immediate one, so a
restarted Redis (every pooled connection dead) is noticed by the first call.

An outage is logged once per instance, not per request or per worker: the
worker that notices first creates ``<state_dir>/redis-outage`` (O_EXCL) and
logs; the one that sees Redis again first removes it and logs the recovery.
The file names the gunicorn arbiter, so a marker left by an instance that was
restarted during an outage does not silence the next one.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import redacted_url
from ..statefiles import private_dir
from .errors import StateUnavailable

log = logging.getLogger("gateway.state")
T = TypeVar("T")

RETRY_INTERVAL = 1.0  # while Redis is unreachable, one call per second per process tries it


class Link:
    def __init__(self, url: str, timeout: float, marker: Path | None = None):
        self.where = redacted_url(url)
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1), retry_on_error=[redis.ConnectionError],
            health_check_interval=30)
        self._password = self.client.connection_pool.connection_kwargs.get("password") or ""
        self.marker = marker
        self._mutex = threading.Lock()
        self._down_since: float | None = None  # wall clock, for /healthz
        self._down_mono = 0.0
        self._reason = ""
        self._next_try = 0.0
        self._probing = False

    # -- calls ---------------------------------------------------------------
    def run(self, fn: Callable[[redis.Redis], T]) -> T:
        """``fn(client)``; raises StateUnavailable when Redis cannot be used now."""
        probing = False
        if self._down_since is not None:
            with self._mutex:
                if self._down_since is not None:
                    if self._probing or time.monotonic() < self._next_try:
                        raise StateUnavailable(self._message())
                    self._probing = probing = True
        try:
            result = fn(self.client)
        except redis.WatchError:
            raise
        except redis.RedisError as exc:
            self._failed(exc)
            raise StateUnavailable(self._message()) from None
        finally:
            if probing:
                self._probing = False
        if self._down_since is not None:
            self._recovered()
        return result

    def reachable(self) -> bool:
        """What this process last saw (no I/O)."""
        return self._down_since is None

    def down_for(self) -> float:
        """Seconds since this process lost Redis (0 while it is reachable)."""
        return 0.0 if self._down_since is None else time.monotonic() - self._down_mono

    def status(self) -> dict:
        """For /healthz: pings Redis unless this process knows it is down."""
        try:
            self.run(lambda r: r.ping())
        except StateUnavailable:
            pass
        if self._down_since is None:
            return {"backend": "redis", "ok": True}
        return {"backend": "redis", "ok": False, "down_since": int(self._down_since),
                "message": self._message()}

    def _message(self) -> str:
        return (f"the state store (Redis at {self.where}) is unreachable ({self._reason}); "
                "accounts and health are served from what this instance last read")

    # -- transitions -----------------------------------------------------------
    def _failed(self, exc: Exception) -> None:
        reason = f"{exc.__class__.__name__}: {exc}"
        if self._password:
            reason = reason.replace(self._password, "***")
        with self._mutex:
            self._next_try = time.monotonic() + RETRY_INTERVAL
            self._reason = reason[:300]
            if self._down_since is not None:
                return
            self._down_since, self._down_mono = time.time(), time.monotonic()
        if self._claim_marker():
            log.warning("%s; token refreshes wait for it (one line per outage)", self._message())

    def _recovered(self) -> None:
        with self._mutex:
            since, self._down_since = self._down_since, None
        if since is not None and self._release_marker():
            log.info("state store: Redis at %s is reachable again after %d s; sharing resumed",
                     self.where, time.time() - since)

    def _claim_marker(self) -> bool:
        """True when this process is the first of its instance to see the outage.

        The marker appears with its owner already in it (written to a file of this
        process, then hard-linked into place, which fails if the marker exists): a
        sibling that saw the outage in the same millisecond once read an empty
        marker, took it for a stale one, and logged the outage a second time."""
        if self.marker is None:
            return True
        owner = str(os.getppid()).encode()
        mine = self.marker.with_name(f"{self.marker.name}.{os.getpid()}")
        for _ in range(2):
            try:
                fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(owner)
            except OSError:  # no state dir: log from every worker rather than never
                try:
                    private_dir(self.marker.parent)
                except OSError:
                    return True
                continue
            try:
                os.link(mine, self.marker)
                return True
            except FileExistsError:
                try:
                    if self.marker.read_bytes() == owner:
                        return False  # a sibling worker logged this outage
                    self.marker.unlink()  # left by an earlier run of the instance
                except OSError:
                    return False
            except OSError:
                return True
            finally:
                try:
                    mine.unlink()
                except OSError:
                    pass
        return False

    def _release_marker(self) -> bool:
        if self.marker is None:
            return True
        try:
            self.marker.unlink()
        except FileNotFoundError:
            return False  # a sibling logged the recovery
        except OSError:
            return True
        return True
