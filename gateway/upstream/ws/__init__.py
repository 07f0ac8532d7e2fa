"""gateway.upstream.ws
~~~~~~~~~~~~~~~~~~~~~~~~
The Codex backend over its WebSocket, one conversation per socket:
:mod:`.client` (the wire: connect, upgrade, frames), :mod:`.delta` (what a turn
uploads), :mod:`.pool` (a worker's idle sockets), :mod:`.fallback` (accounts
kept on HTTP), :mod:`.reader` (one response's events), :mod:`.sockets`
(:class:`CodexSockets`: all of it for one worker).
"""
from __future__ import annotations

from .sockets import CodexSockets

__all__ = ["CodexSockets"]
