"""Runs last: no secret used by the suite appears in any log line or error body.

Every client key, access token, refresh token and API key the tests use is
registered (``tests.conftest.register_secret``); every gunicorn process logs
to a file under LOG_DIR and every error body is recorded there too.
"""
from __future__ import annotations

from tests.conftest import ERROR_BODIES, LOG_DIR, SECRETS_FILE


def test_no_secret_in_logs_or_error_bodies():
    secrets = {s for s in SECRETS_FILE.read_text().splitlines() if len(s) >= 8} \
        if SECRETS_FILE.exists() else set()
    files = [f for f in LOG_DIR.iterdir()
             if f.is_file() and f != SECRETS_FILE]
    assert secrets, "no secret was registered: the audit would prove nothing"
    assert any(f.suffix == ".log" for f in files), "no gateway log was produced"
    leaks = []
    scanned = 0
    for f in files:
        text = f.read_text(errors="replace")
        scanned += text.count("\n")
        leaks += [(f.name, s[:12] + "…") for s in secrets if s in text]
    assert not leaks, f"secrets found in logs: {leaks}"
    assert scanned > 50
    assert ERROR_BODIES.exists()
