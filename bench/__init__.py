"""Benchmark, load and soak harness for codex-gateway (not shipped with the package).

``python -m bench.run``  — what the gateway costs next to direct and nginx-only paths.
``python -m bench.soak`` — mixed load with injected upstream faults; leaks and lost requests.
``python -m bench.micro`` — the per-request / per-event hot paths in isolation.
``python -m bench.websockets`` — how many open client WebSockets the shipped config holds.
``python -m bench.upstream_ws`` — the Codex backend over WebSocket against HTTP.

``make bench`` runs all but the soak (``make soak``).
"""
