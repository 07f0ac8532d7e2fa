from __future__ import annotations

from werkzeug.datastructures import EnvironHeaders, Headers

from gateway.client_headers import ClientHeaders


def test_lookups_ignore_case_and_items_keep_the_clients_names():
    h = ClientHeaders(EnvironHeaders({"HTTP_SESSION_ID": "s1", "CONTENT_TYPE": "application/json",
                                      "HTTP_X_CODEX_TURN_STATE": "t"}))
    assert h.get("session_id") is None  # the environ spells it session-id
    assert h.get("Session-Id") == "s1" and h["SESSION-ID"] == "s1"
    assert "content-type" in h and "nope" not in h and None not in h
    assert h.get("missing", "d") == "d"
    assert dict(h.items()) == {"Session-Id": "s1", "Content-Type": "application/json",
                               "X-Codex-Turn-State": "t"}
    assert sorted(h) == ["Content-Type", "Session-Id", "X-Codex-Turn-State"] and len(h) == 3


def test_a_repeated_header_reads_its_first_value_as_werkzeug_does():
    src = Headers([("X-A", "1"), ("x-a", "2")])
    h = ClientHeaders(src)
    assert h.get("x-a") == src.get("x-a") == "1"
    assert h.items() == [("X-A", "1"), ("x-a", "2")]


def test_of_reads_once_and_takes_plain_dicts_and_none():
    h = ClientHeaders.of({"A": "1"})
    assert ClientHeaders.of(h) is h and h.get("a") == "1"
    assert len(ClientHeaders.of(None)) == 0
    assert "abc" not in repr(ClientHeaders({"Authorization": "abc"}))
