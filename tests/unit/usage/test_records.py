"""Usage rows from a request record: no secrets, what counts as an error, the median."""
from __future__ import annotations

import time

import pytest

from gateway.record import Outcome, RequestRecord
from gateway.usage.records import is_error, median, row_from_record


def test_a_finished_record_becomes_a_row_without_secrets():
    rec = RequestRecord(dialect="chat", key_id="key-123", model_asked="gpt-5")
    rec.account, rec.model_sent, rec.continuity_source = "codex-x", "gpt-5-codex", "conversation"
    rec.mark_first_byte()
    rec.add_usage({"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
                   "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 7}})
    rec.finish(200, Outcome.COMPLETED)
    r = row_from_record(rec)
    assert (r.key_id, r.account, r.dialect, r.transport) == ("key-123", "codex-x", "chat", "http")
    assert (r.model_asked, r.model_sent, r.model) == ("gpt-5", "gpt-5-codex", "gpt-5-codex")
    assert (r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens) == \
        (1200, 1024, 30, 7)
    assert r.outcome == "completed" and r.status == 200 and not r.error
    assert r.ttfb_ms is not None and r.duration_ms >= r.ttfb_ms >= 0
    assert abs(r.ts - time.time()) < 5


@pytest.mark.parametrize("status, outcome, error", [
    (200, "completed", False), (200, "incomplete", False), (200, "client_closed", False),
    (200, "failed", True), (200, "truncated", True), (200, "upstream_error", True),
    (401, "rejected", True), (429, "upstream_error", True), (502, "upstream_error", True),
])
def test_what_counts_as_an_error(status, outcome, error):
    assert is_error(status, outcome) is error


@pytest.mark.parametrize("values, expected", [
    ([], None), ([5.0], 5.0), ([1.0, 3.0], 2.0), ([1.0, 2.0, 9.0], 2.0), ([1, 2, 3, 10], 2.5),
])
def test_median(values, expected):
    assert median(values) == expected
