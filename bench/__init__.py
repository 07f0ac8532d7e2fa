"""Benchmark, load and soak harness for codex-gateway (not shipped with the package).

``python -m bench.run``  — what the gateway costs next to direct and nginx-only paths.
``python -m bench.soak`` — mixed load with injected upstream faults; leaks and lost requests.
``python -m bench.micro`` — the per-request / per-event hot paths in isolation.
"""
