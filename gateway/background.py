"""gateway.background
~~~~~~~~~~~~~~~~~~~~~
A periodic daemon thread that holds its owner weakly.

The account pool's state watch and the upstream-socket reaper both tick while
their owner lives: a strong reference from the thread would keep a dropped pool
(a test's, a reloaded app's) alive forever, and its thread with it.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def weak_loop(owner: T, period: float, tick: Callable[[T], bool | None],
              name: str) -> threading.Thread:
    """A daemon thread (not started) calling ``tick(owner)`` every *period* seconds
    until the owner is collected or *tick* returns False."""
    ref = weakref.ref(owner)

    def run() -> None:
        while True:
            time.sleep(period)
            current = ref()
            if current is None or tick(current) is False:
                return
            del current

    return threading.Thread(target=run, name=name, daemon=True)
