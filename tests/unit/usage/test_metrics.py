"""Prometheus metrics in one process: what a record, the pool and the writer feed."""
from __future__ import annotations

import os
import stat

from prometheus_client.parser import text_string_to_metric_families

from gateway.record import Outcome, RequestRecord
from gateway.usage import multiproc
from gateway.usage.metrics import Metrics, OpenConnections


def samples(metrics: Metrics, rows=None) -> dict:
    body, content_type = metrics.render(rows)
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(found: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in found.items()
               if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items()))


USAGE = {"input_tokens": 1500, "input_tokens_details": {"cached_tokens": 1024},
         "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 8}}


def finished(key="key-a", account="codex-a", status=200, outcome=Outcome.COMPLETED, usage=USAGE):
    rec = RequestRecord(dialect="chat", key_id=key)
    rec.account = account
    rec.mark_first_byte()
    rec.add_usage(usage)
    rec.finish(status, outcome)
    return rec


def test_records_feed_requests_timings_and_tokens():
    m = Metrics()
    m.sink(finished())
    m.sink(finished(key=None, account=None, status=401, outcome=Outcome.REJECTED, usage={}))
    found = samples(m)
    assert total(found, "codex_gateway_requests_total") == 2
    assert total(found, "codex_gateway_requests_total", status="401", outcome="rejected",
                 key_id="-", account="-") == 1
    assert total(found, "codex_gateway_tokens_total", kind="cached") == 1024
    assert total(found, "codex_gateway_tokens_total", kind="input") == 1500
    assert total(found, "codex_gateway_tokens_total", kind="reasoning") == 8
    assert total(found, "codex_gateway_ttfb_seconds_count", dialect="chat") == 2
    assert total(found, "codex_gateway_request_duration_seconds_count") == 2
    assert not any(n.endswith("_created") for n, _ in found)


def test_two_apps_in_one_process_never_share_a_series():
    a, b = Metrics(), Metrics()
    a.sink(finished())
    assert total(samples(b), "codex_gateway_requests_total") == 0


def test_pool_and_writer_hooks():
    m = Metrics()
    m.upstream_failure("codex-a", 429, "usage_limit_reached")
    m.upstream_failure("codex-a", 502, "")
    m.refresh("codex-a", "refreshed")
    m.dropped("store_error", 3)
    m.written(5)
    found = samples(m)
    assert total(found, "codex_gateway_upstream_errors_total", code="usage_limit_reached") == 1
    assert total(found, "codex_gateway_upstream_errors_total", code="http_502") == 1
    assert total(found, "codex_gateway_token_refreshes_total", result="refreshed") == 1
    assert total(found, "codex_gateway_usage_rows_dropped_total", reason="store_error") == 3
    assert total(found, "codex_gateway_usage_rows_dropped_total", reason="queue_full") == 0
    assert total(found, "codex_gateway_usage_rows_written_total") == 5


def test_account_gauges_are_read_when_scraped():
    rows = [{"id": "codex-a", "kind": "codex", "state": "cooling", "cooldown_until": 4e9,
             "last_refresh": 1.7e9, "rate_limits": {
                 "primary": {"used_percent": 12.0, "window_minutes": 300, "reset_at": 1.8e9},
                 "secondary": {"used_percent": 34.0}, "observed_at": 1.7e9}}]
    found = samples(Metrics(), lambda: rows)
    assert total(found, "codex_gateway_account_state", account="codex-a", state="cooling") == 1
    assert total(found, "codex_gateway_account_state", account="codex-a", state="ok") == 0
    assert total(found, "codex_gateway_account_cooldown_seconds") > 0
    assert total(found, "codex_gateway_account_quota_used_percent", window="primary") == 12
    assert total(found, "codex_gateway_account_quota_used_percent", window="secondary") == 34
    assert total(found, "codex_gateway_account_quota_reset_timestamp_seconds") == 1.8e9
    broken = samples(Metrics(), lambda: 1 / 0)  # a broken health store: /metrics still answers
    assert total(broken, "codex_gateway_account_state") == 0


def _app(content_type, chunks=(b"a", b"b")):
    closed = []

    class Body:
        def __iter__(self):
            return iter(chunks)

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", content_type)])
        return Body()
    return app, closed


def test_open_streams_count_until_the_server_closes_the_answer():
    m = Metrics()
    app, closed = _app("text/event-stream; charset=utf-8")
    wrapped = OpenConnections(app, m)
    result = wrapped({}, lambda *a: None)
    assert total(samples(m), "codex_gateway_open_streams") == 1
    assert b"".join(result) == b"ab"
    result.close()
    result.close()  # twice: counted once
    assert closed == [True, True] and total(samples(m), "codex_gateway_open_streams") == 0


def test_json_answers_are_passed_through_untouched():
    m = Metrics()
    app, _ = _app("application/json")
    result = OpenConnections(app, m)({}, lambda *a: None)
    assert type(result).__name__ == "Body"
    assert total(samples(m), "codex_gateway_open_streams") == 0


def test_open_websockets_count_while_the_session_runs():
    m = Metrics()
    seen = []

    def app(environ, start_response):
        seen.append(total(samples(m), "codex_gateway_open_websockets"))
        return []
    OpenConnections(app, m)({"HTTP_UPGRADE": "WebSocket"}, lambda *a: None)
    assert seen == [1] and total(samples(m), "codex_gateway_open_websockets") == 0


def test_the_multiprocess_directory_is_private_and_wiped_of_metric_files_only(tmp_path):
    env = {}
    path = multiproc.ensure_dir(env)
    try:
        assert env[multiproc.ENV] == path and stat.S_IMODE(os.stat(path).st_mode) == 0o700
        for name in ("counter_1.db", "gauge_livesum_2.db", "keep.txt"):
            open(os.path.join(path, name), "w").close()
        multiproc.wipe(path)
        assert os.listdir(path) == ["keep.txt"]
        assert multiproc.ensure_dir(env) == path  # a HUP re-reads the config: same directory
    finally:
        multiproc.remove_if_owned(env)
    assert not os.path.exists(path)
    given = {multiproc.ENV: str(tmp_path / "mine")}
    assert multiproc.ensure_dir(given) == str(tmp_path / "mine")
    multiproc.remove_if_owned(given)  # not ours: kept
    assert (tmp_path / "mine").is_dir()
