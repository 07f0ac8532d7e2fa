"""Account files: atomic 0600 writes, round trips, claims, the auth_file shortcut."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import time

import pytest

from gateway.state import files as store_mod
from gateway.state import records, tokens
from gateway.state.files import FileStore
from gateway.state.records import StoreError, codex_record, openai_record
from tests.fakes.jwt import codex_claims, make_jwt


def _toks(account_id="acct-1", plan="pro", exp=None, parsed_id_token=False):
    claims = codex_claims(account_id, plan=plan, email=f"{account_id}@example.test")
    return {"access_token": make_jwt(codex_claims(account_id, exp=exp)),
            "refresh_token": f"rt-{account_id}",
            "id_token": claims if parsed_id_token else make_jwt(claims)}


@pytest.mark.parametrize("parsed", [False, True], ids=["jwt-string", "parsed-claims"])
def test_claims_from_jwt_string_or_parsed_object(parsed):
    toks = _toks("acct-9", plan="team", parsed_id_token=parsed)
    assert tokens.identity(toks["id_token"]) == {
        "account_id": "acct-9", "plan": "team", "email": "acct-9@example.test"}
    rec = codex_record(toks, label="work")
    assert (rec["id"], rec["kind"], rec["plan"], rec["label"]) == (
        "codex-acct-9", "codex", "team", "work")


def test_token_expiry_and_margin():
    now = time.time()
    soon = make_jwt({"exp": now + 100, "iat": now - 3500})
    later = make_jwt({"exp": now + 3000, "iat": now - 600})
    short = make_jwt({"exp": now + 250, "iat": now - 50})  # 300 s lifetime: margin halves
    assert tokens.expires_within(soon, 300) and not tokens.expires_within(later, 300)
    assert not tokens.expires_within(short, 300)
    assert tokens.expiry("not-a-jwt") is None and tokens.claims("a.b.c") == {}
    assert not tokens.expires_within("garbage", 300)


def test_codex_record_needs_an_account_id():
    with pytest.raises(StoreError) as info:
        codex_record({"access_token": "x.y.z", "refresh_token": "secret-rt", "id_token": None})
    assert "secret-rt" not in str(info.value)


def test_round_trip_atomic_and_0600(tmp_path):
    st = FileStore(tmp_path)
    rec = codex_record(_toks(), weight=2.0, models=["gpt-5"])
    st.save(rec)
    path = tmp_path / "accounts" / "codex-acct-1.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert st.load("codex-acct-1") == rec and FileStore(tmp_path).records() == [rec]
    key = openai_record("sk-test-123", base_url="http://x/v1", label="team key")
    st.save(key)
    assert key["id"] == "openai-team-key" and st.load(key["id"])["api_key"] == "sk-test-123"
    assert sorted(os.listdir(path.parent)) == ["codex-acct-1.json", "openai-team-key.json"]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    st = FileStore(tmp_path)
    rec = codex_record(_toks())
    st.save(rec)

    def broken_dump(obj, fh, **kw):
        fh.write('{"half": ')
        raise OSError("disk full")

    monkeypatch.setattr(store_mod.json, "dump", broken_dump)
    with pytest.raises(OSError):
        st.save(dict(rec, access_token="new"))
    monkeypatch.undo()
    assert os.listdir(tmp_path / "accounts") == ["codex-acct-1.json"]
    assert FileStore(tmp_path).load("codex-acct-1")["access_token"] == rec["access_token"]


def test_replace_is_seen_by_a_cached_reader(tmp_path):
    reader, writer = FileStore(tmp_path), FileStore(tmp_path)
    rec = codex_record(_toks())
    writer.save(rec)
    assert reader.load(rec["id"])["refresh_token"] == "rt-acct-1"
    writer.save(dict(rec, refresh_token="rt-2"))
    assert reader.load(rec["id"])["refresh_token"] == "rt-2"


def test_ids_are_filename_safe():
    assert records.safe_id("openai-../../etc/passwd") == "openai-..-..-etc-passwd"
    assert "/" not in records.safe_id("codex-a/b") and not records.safe_id("..x").startswith(".")
    assert openai_record("sk-abc")["id"] == "openai-" + hashlib.sha256(b"sk-abc").hexdigest()[:8]


def test_auth_file_shortcut_read_and_written_back_in_place(tmp_path):
    auth = tmp_path / "codex" / "auth.json"
    auth.parent.mkdir()
    toks = _toks("acct-cli", parsed_id_token=True)
    auth.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": {**toks, "account_id": "acct-cli"},
                                "last_refresh": "2025-09-01T12:34:56.123456789Z"}))
    st = FileStore(tmp_path / "state", str(auth))
    (rec,) = st.records()
    assert (rec["id"], rec["source"], rec["plan"]) == ("codex-acct-cli", "auth_file", "pro")
    st.save(dict(rec, access_token="new-at", refresh_token="new-rt"))
    data = json.loads(auth.read_text())
    assert data["tokens"]["refresh_token"] == "new-rt" and data["OPENAI_API_KEY"] is None
    assert data["tokens"]["id_token"] == toks["id_token"]  # a parsed id token stays parsed
    assert stat.S_IMODE(os.stat(auth).st_mode) == 0o600
    assert not (tmp_path / "state" / "accounts").exists()  # used in place, not copied
