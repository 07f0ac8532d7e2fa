"""The end-of-session secret audit (tests.conftest.pytest_sessionfinish) finds leaks."""
from __future__ import annotations

from tests.support import audit_secrets


def test_audit_finds_a_secret_in_any_log_file(tmp_path):
    (tmp_path / "secrets.txt").write_text("sk-secret-0123456789\nshort\n")
    (tmp_path / "gw-1.log").write_text("request ok account=codex-a\n")
    assert audit_secrets(tmp_path) == []
    (tmp_path / "error-bodies.txt").write_text('{"error": "bad sk-secret-0123456789"}\n')
    assert audit_secrets(tmp_path) == ["error-bodies.txt: sk-secret-01…"]


def test_no_secrets_registered_means_nothing_to_find(tmp_path):
    assert audit_secrets(tmp_path) == []
