"""/status in a real headless browser (Debian's chromium, installed by
tests/clients/install.sh): the page renders from the gateway alone, shows both
accounts with their quota bars, and no secret.

``CODEX_GATEWAY_UPDATE_SCREENSHOT=1`` also writes the screenshot to docs/status.png.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import requests

from gateway.state.files import FileStore
from gateway.state.records import codex_record
from tests.support import ROOT, register_secret
from tests.support import codex_tokens

from tests.support import CLIENT_KEY, LONG_SYSTEM, gateway_env
from .test_usage_workers import ADMIN_KEY, BOTH_KEYS, SECOND_KEY

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (tests/clients/install.sh installs it)")


def browse(browser: str, profile, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_status_page_in_chromium(gateway_factory, upstream, tmp_path):
    browser = chromium()
    state = tmp_path / "state"
    for account in ("acct-main", "acct-backup"):
        toks = codex_tokens(account)
        for k in ("access_token", "refresh_token"):
            register_secret(toks[k])
        FileStore(state).save(codex_record(toks))
    env = gateway_env(upstream, tmp_path, CODEX_GATEWAY_AUTH_CLIENT_KEYS=BOTH_KEYS,
                      CODEX_GATEWAY_AUTH_ADMIN_KEYS=ADMIN_KEY)
    env["CODEX_GATEWAY_ACCOUNTS_AUTH_FILE"] = ""
    gw = gateway_factory(env, workers=2, threads=8)

    for i in range(12):  # two keys, cache hits on the second turn of each conversation
        key = (CLIENT_KEY, SECOND_KEY)[i % 2]
        body = {"model": "gpt-5-codex", "instructions": LONG_SYSTEM,
                "input": f"conversation {i % 4}", "prompt_cache_key": f"c{i % 4}"}
        resp = requests.post(gw.url + "/v1/responses", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200
    bad = requests.post(gw.url + "/v1/responses", json={"model": "gpt-5-codex", "input": 5},
                        headers={"Authorization": f"Bearer {SECOND_KEY}"}, timeout=30)
    assert bad.status_code == 400

    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def ready():
        page = requests.get(gw.url + "/status", headers=admin, timeout=10).text
        bars = page.count('data-window="primary"') + page.count('data-window="secondary"')
        return page if bars == 4 and "invalid_request" in page and "key-" in page else None
    deadline = time.monotonic() + 20
    page = ready()
    while page is None and time.monotonic() < deadline:  # usage rows and quota polls land
        time.sleep(0.2)
        page = ready()
    assert page, "the status page never showed both accounts' quota windows and the usage"

    url = f"http://admin:{ADMIN_KEY}@127.0.0.1:{gw.port}/status"  # HTTP Basic, as a browser does
    dom = browse(browser, tmp_path / "profile-dom", "--dump-dom", url).stdout
    assert "codex-acct-main" in dom and "codex-acct-backup" in dom
    assert dom.count('class="bar" data-window="primary"') == 2
    assert dom.count('class="bar" data-window="secondary"') == 2
    assert 'id="cache-chart"' in dom and 'class="hit"' in dom
    assert "Recent errors" in dom and "invalid_request" in dom
    for secret in (ADMIN_KEY, CLIENT_KEY, SECOND_KEY, "rt-acct-main", "eyJ"):
        assert secret not in dom

    shot = tmp_path / "status.png"
    browse(browser, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,1400",
           "--hide-scrollbars", url)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    if os.environ.get("CODEX_GATEWAY_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "status.png")
