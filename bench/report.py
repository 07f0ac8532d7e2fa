"""bench.report
~~~~~~~~~~~~~~~
The table (markdown) and the plot (PNG) of one ``bench.run`` result.
"""
from __future__ import annotations

from pathlib import Path

from gateway.config import ServerConfig

TARGETS = {
    "added_latency_ms": 1.5,
    "added_ttfb_ms": 2.0,
    "cpu_per_event_us": 30.0,
    "cpu_per_request_ms": 1.0,
    "streams": 1000,
    "rss_per_stream_kb": 80.0,
}
GW_MAIN, GW_GEVENT, GW_INLINE = "gthread", "gevent", "gthread-keepalive-off"
SHIPPED_THREADS = ServerConfig().threads  # the shipped default


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _f(v, digits=2, unit=""):
    if v is None:
        return "—"
    return f"{v:.{digits}f}{unit}"


def _verdict(ok) -> str:
    return "—" if ok is None else ("**pass**" if ok else "**FAIL**")


def table(res: dict) -> str:
    d, n, gws = res["direct"], res["nginx"], res["gateways"]
    g, ge, gi = gws.get(GW_MAIN, {}), gws.get(GW_GEVENT, {}), gws.get(GW_INLINE, {})
    rows = []

    def row(figure, direct, nginx, gw, gev, added, target, ok):
        rows.append(f"| {figure} | {direct} | {nginx} | {gw} | {gev} | {added} | {target} | "
                    f"{_verdict(ok)} |")

    # latency, non-stream
    for ep in ("responses", "chat"):
        base = _get(d, "latency", "p50_ms")
        gw = _get(g, ep, "latency", "p50_ms")
        added = gw - base if gw is not None and base is not None else None
        row(f"latency, small JSON request, p50 (ms) — `{_path(ep)}`",
            _f(base, 3), _f(_get(n, "latency", "p50_ms"), 3), _f(gw, 3),
            _f(_get(ge, ep, "latency", "p50_ms"), 3),
            f"+{_f(added, 3)} ms (×{_f(gw / base if base else None, 1)})",
            f"added ≤ {TARGETS['added_latency_ms']} ms",
            None if added is None else added <= TARGETS["added_latency_ms"])
    for ep in ("responses", "chat"):
        base = _get(d, "latency", "p99_ms")
        gw = _get(g, ep, "latency", "p99_ms")
        row(f"latency, small JSON request, p99 (ms) — `{_path(ep)}`", _f(base, 3),
            _f(_get(n, "latency", "p99_ms"), 3), _f(gw, 3),
            _f(_get(ge, ep, "latency", "p99_ms"), 3),
            f"+{_f(gw - base if gw and base else None, 3)} ms", "(info)", None)
    for ep in ("responses", "chat"):
        base = _get(d, "latency", "ttfb_p50_ms")
        gw = _get(g, ep, "stream", "ttfb_p50_ms")
        added = gw - base if gw is not None and base is not None else None
        row(f"time to first byte, streaming, p50 (ms) — `{_path(ep)}`", _f(base, 3),
            _f(_get(n, "latency", "ttfb_p50_ms"), 3), _f(gw, 3),
            _f(_get(ge, ep, "stream", "ttfb_p50_ms"), 3), f"+{_f(added, 3)} ms",
            f"added ≤ {TARGETS['added_ttfb_ms']} ms",
            None if added is None else added <= TARGETS["added_ttfb_ms"])
    # CPU per event
    for mode, label in (("paced", "paced upstream, 1 event per read"),
                        ("burst", "burst upstream, 64 KB reads")):
        key = f"cpu_event_{mode}"
        gw = _get(g, "chat", key, "us")
        row(f"gateway CPU per streamed event, chat translation (µs) — {label}", "—",
            _f(_get(n, key, "us"), 1), _f(gw, 1), _f(_get(ge, "chat", key, "us"), 1),
            f"keep-alive off: {_f(_get(gi, 'chat', key, 'us'), 1)}",
            f"≤ {TARGETS['cpu_per_event_us']:.0f} µs",
            None if gw is None else gw <= TARGETS["cpu_per_event_us"])
    for mode, label in (("paced", "paced upstream"), ("burst", "burst upstream")):
        key = f"cpu_event_{mode}"
        row(f"gateway CPU per streamed event, `/v1/responses` pass-through (µs) — {label}",
            "—", _f(_get(n, key, "us"), 1), _f(_get(g, "responses", key, "us"), 1),
            _f(_get(ge, "responses", key, "us"), 1),
            f"keep-alive off: {_f(_get(gi, 'responses', key, 'us'), 1)}", "(info)", None)
    # CPU per request
    for ep in ("responses", "chat"):
        gw = _get(g, ep, "cpu_request", "ms")
        row(f"gateway CPU per small JSON request (ms) — `{_path(ep)}`", "—",
            _f(_get(n, "cpu_request", "ms"), 3), _f(gw, 3),
            _f(_get(ge, ep, "cpu_request", "ms"), 3), "worker CPU s ÷ requests",
            f"≤ {TARGETS['cpu_per_request_ms']} ms",
            None if gw is None else gw <= TARGETS["cpu_per_request_ms"])
    # capacity
    k = None
    for label, cap in _capacities(res):
        k = cap.get("requested")
        held, dropped = cap.get("held_at_once"), cap.get("dropped")
        ok = None if held is None else (held >= TARGETS["streams"] and dropped == 0)
        rows.append(f"| streams held at once of {k} requested, 2 workers — {label} | "
                    f"{_cap(res['direct'])} | {_cap(n)} | {held} held, {dropped} dropped | | "
                    f"first byte max {_f(cap.get('first_byte_ms_max'), 0)} ms | "
                    f"≥ {TARGETS['streams']}, none dropped | {_verdict(ok)} |")
    # memory
    for label, cap in _capacities(res):
        kb = cap.get("rss_per_stream_kb")
        ok = None if kb is None else kb <= TARGETS["rss_per_stream_kb"]
        nkb = _get(n, "capacity", str(k), "rss_per_stream_kb") if k else None
        rows.append(f"| RSS per extra open stream (KB) — {label} | — | {_f(nkb, 1)} | "
                    f"{_f(kb, 1)} | | peak threads {cap.get('threads_peak')} | "
                    f"≤ {TARGETS['rss_per_stream_kb']:.0f} KB | {_verdict(ok)} |")
    head = ("| figure | direct | nginx-only | gateway (gthread) | gateway (gevent) | "
            "added / ratio / note | target | result |\n"
            "|---|---|---|---|---|---|---|---|")
    meta = res.get("meta", {})
    foot = (f"\n\nMedians of {meta.get('repeats')} runs; {meta.get('machine')}; Python "
            f"{meta.get('python')}; {meta.get('date')}; run took {meta.get('seconds')} s.")
    return head + "\n" + "\n".join(rows) + foot


def _path(ep: str) -> str:
    return "/v1/responses" if ep == "responses" else "/v1/chat/completions"


def _cap(target: dict) -> str:
    caps = target.get("capacity") or {}
    if not caps:
        return "—"
    cap = next(iter(caps.values()))
    return f"{cap.get('held_at_once')} held, {cap.get('dropped')} dropped"


def _capacities(res: dict):
    out = []
    for name in (GW_MAIN, GW_GEVENT):
        caps = _get(res, "gateways", name, "capacity") or {}
        for label, cap in caps.items():
            threads = (f" ({SHIPPED_THREADS} threads/worker)"
                       if name == GW_MAIN and label == "shipped" else "")
            out.append((f"{name}, {label} config{threads}", cap))
    return out


def plot(res: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d, n, gws = res["direct"], res["nginx"], res["gateways"]
    g, ge = gws.get(GW_MAIN, {}), gws.get(GW_GEVENT, {})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110)

    labels = ["direct", "nginx-only", "gateway\ngthread", "gateway\ngevent"]
    json_p50 = [_get(d, "latency", "p50_ms"), _get(n, "latency", "p50_ms"),
                _get(g, "responses", "latency", "p50_ms"),
                _get(ge, "responses", "latency", "p50_ms")]
    ttfb = [_get(d, "latency", "ttfb_p50_ms"), _get(n, "latency", "ttfb_p50_ms"),
            _get(g, "responses", "stream", "ttfb_p50_ms"),
            _get(ge, "responses", "stream", "ttfb_p50_ms")]
    xs = range(len(labels))
    w = 0.38
    b1 = ax1.bar([x - w / 2 for x in xs], [v or 0 for v in json_p50], w,
                 label="small JSON request, p50", color="#4C72B0")
    b2 = ax1.bar([x + w / 2 for x in xs], [v or 0 for v in ttfb], w,
                 label="stream, time to first byte, p50", color="#DD8452")
    for bars in (b1, b2):
        for bar in bars:
            ax1.annotate(f"{bar.get_height():.2f}", (bar.get_x() + bar.get_width() / 2,
                                                      bar.get_height()),
                         ha="center", va="bottom", fontsize=8)
    base = json_p50[0] or 0
    ax1.axhline(base + TARGETS["added_latency_ms"], color="#4C72B0", ls="--", lw=0.8,
                label=f"direct + {TARGETS['added_latency_ms']} ms (target)")
    ax1.set_xticks(list(xs), labels)
    ax1.set_ylabel("ms")
    ax1.set_title("Latency through each path (/v1/responses)")
    ax1.legend(fontsize=8, loc="upper left")

    caps = [("direct", _first_cap(d)), ("nginx-only", _first_cap(n))]
    for name, gw in ((GW_MAIN, g), (GW_GEVENT, ge)):
        for label, cap in (gw.get("capacity") or {}).items():
            caps.append((f"{name}\n{label}", cap))
    names = [c[0] for c in caps]
    held = [(c[1] or {}).get("held_at_once") or 0 for c in caps]
    colors = ["#8C8C8C", "#55A868"] + ["#C44E52"] * (len(caps) - 2)
    bars = ax2.bar(range(len(caps)), held, color=colors)
    for bar, (_, cap) in zip(bars, caps):
        cap = cap or {}
        kb = cap.get("rss_per_stream_kb")
        text = f"{bar.get_height():.0f}" + (f"\n{kb:.0f} KB/stream" if kb else "")
        ax2.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                     ha="center", va="bottom", fontsize=8)
    k = next((c[1].get("requested") for c in caps if c[1]), None)
    if k:
        ax2.axhline(k, color="black", ls=":", lw=0.8, label=f"{k} requested")
    ax2.axhline(TARGETS["streams"], color="#C44E52", ls="--", lw=0.8, label="target")
    ax2.set_xticks(range(len(caps)), names, fontsize=8)
    ax2.set_ylabel("streams open at once")
    ax2.set_ylim(0, max(held + [k or 0]) * 1.25 + 1)
    ax2.set_title("Stream capacity, 2 workers (RSS per extra stream)")
    ax2.legend(fontsize=8, loc="lower right")
    meta = res.get("meta", {})
    fig.suptitle(f"codex-gateway benchmark — {meta.get('machine')} — {meta.get('date')}",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _first_cap(target: dict):
    caps = target.get("capacity") or {}
    return next(iter(caps.values()), None)
