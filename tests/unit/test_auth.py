"""Client keys: constant-time check, ids, a keys file of digests, and the no-key proxy rule;
admin keys."""
from __future__ import annotations

import base64
import logging
import os
import stat
import threading

import pytest

from gateway import auth
from gateway.auth import (AdminKeys, ClientKeys, add_key, hash_key, key_id, parse_keys,
                          presented_key, read_keys_file)
from gateway.errors import GatewayError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_keys_from_config_and_file(tmp_path):
    f = tmp_path / "client_keys"
    keys = ClientKeys(("cfg-key",), f)
    assert keys.check("Bearer cfg-key") == key_id("cfg-key")
    entry = add_key(f, "laptop", "file-key")
    assert entry.id == key_id("file-key") and entry.name == "laptop"
    assert keys.check("Bearer file-key") == key_id("file-key")
    assert mode(f) == 0o600
    assert key_id("file-key").startswith("key-") and "file-key" not in key_id("file-key")


def test_the_keys_file_holds_digests_never_keys(tmp_path):
    f = tmp_path / "state" / "client_keys"
    key = auth.new_key()
    add_key(f, "laptop", key)
    add_key(f, "ci", "second-key")
    text = f.read_text()
    assert key not in text and "second-key" not in text
    assert text == f"laptop {hash_key(key)}\nci {hash_key('second-key')}\n"
    assert mode(f.parent) == 0o700 and mode(f) == 0o600


def test_a_copied_keys_file_holds_no_usable_key(tmp_path):
    f = tmp_path / "client_keys"
    add_key(f, "laptop", auth.new_key())
    keys = ClientKeys((), f)
    for token in f.read_text().split():  # every word a thief could try
        with pytest.raises(GatewayError) as exc:
            keys.check(f"Bearer {token}")
        assert exc.value.code == "invalid_api_key"


def test_a_plain_text_file_is_hashed_in_place_on_first_read(tmp_path, caplog):
    f = tmp_path / "client_keys"
    f.write_text("# my keys\nlaptop plain-one\n\nplain-two\nci " + hash_key("already") + "\n")
    os.chmod(f, 0o644)
    keys = ClientKeys((), f)
    with caplog.at_level(logging.INFO, "gateway.auth"):
        assert keys.check("Bearer plain-one") == key_id("plain-one")
    assert keys.check("Bearer plain-two") == key_id("plain-two")
    assert keys.check("Bearer already") == key_id("already")
    assert f.read_text() == (f"# my keys\nlaptop {hash_key('plain-one')}\n\n"
                             f"- {hash_key('plain-two')}\nci {hash_key('already')}\n")
    assert mode(f) == 0o600
    assert "plain-one" not in caplog.text and "replaced by their sha256 digests" in caplog.text
    assert [e.name for e in read_keys_file(f)] == ["laptop", "-", "ci"]


def test_an_unwritable_plain_file_still_works_and_says_why(tmp_path, caplog, monkeypatch):
    f = tmp_path / "client_keys"
    f.write_text("laptop plain-one\n")

    def read_only(path, data):  # a keys file in a read-only place (root ignores chmod)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(auth, "atomic_write", read_only)
    with caplog.at_level(logging.WARNING, "gateway.auth"):
        assert ClientKeys((), f).check("Bearer plain-one") == key_id("plain-one")
    assert "cannot be rewritten hashed: Permission denied" in caplog.text
    assert "plain-one" not in caplog.text
    assert f.read_text() == "laptop plain-one\n"


def test_a_config_key_may_be_given_as_its_digest(tmp_path):
    keys = ClientKeys((hash_key("secret-key"), "plain-key"))
    assert keys.check("Bearer secret-key") == key_id("secret-key")
    assert keys.check("Bearer plain-key") == key_id("plain-key")
    assert auth.config_key_id(hash_key("secret-key")) == key_id("secret-key")
    with pytest.raises(GatewayError):
        keys.check(f"Bearer {hash_key('secret-key')}")


@pytest.mark.parametrize("line,name,is_plain", [
    ("k1", "-", True),
    ("laptop k1", "laptop", True),
    ("my laptop k1", "my laptop", True),
    ("laptop sha256:" + "ab" * 32, "laptop", False),
    ("laptop SHA256:" + "ab" * 32, "laptop", True),  # not the stored form: a key
    ("laptop sha256:" + "AB" * 32, "laptop", False),
    ("laptop sha256:abc", "laptop", True),  # too short to be a digest: a key
    ("# laptop k1", None, False),
    ("   ", None, False),
])
def test_parse_keys(line, name, is_plain):
    entries, plain = parse_keys(line + "\n")
    assert plain is is_plain
    assert [e.name for e in entries] == ([name] if name else [])


@pytest.mark.parametrize("given,stored", [
    ("laptop", "laptop"), ("my laptop", "my-laptop"), ("#evil", "evil"), ("a\nb", "a-b"),
    ("", "client"), ("###", "client"),
])
def test_names_stay_one_token_and_never_a_comment(tmp_path, given, stored):
    f = tmp_path / "client_keys"
    add_key(f, given, "k")
    [entry] = read_keys_file(f)
    assert entry.name == stored and entry.id == key_id("k")


def test_concurrent_adds_lose_no_key(tmp_path):
    f = tmp_path / "client_keys"
    f.write_text("old plain-old\n")  # a migration racing with the adds, too
    threads = [threading.Thread(target=add_key, args=(f, f"n{i}", f"key-{i}")) for i in range(16)]
    for t in threads:
        t.start()
    reader = ClientKeys((), f)
    assert reader.check("Bearer plain-old") == key_id("plain-old")
    for t in threads:
        t.join()
    assert {e.id for e in read_keys_file(f)} == {key_id(f"key-{i}") for i in range(16)} | \
        {key_id("plain-old")}


def test_a_missing_file_means_no_file_keys(tmp_path):
    f = tmp_path / "client_keys"
    assert read_keys_file(f) == [] and not ClientKeys((), f).enabled
    assert not f.exists()


@pytest.mark.parametrize("header,code", [
    (None, "missing_api_key"), ("Basic abc", "invalid_api_key"), ("Bearer ", "invalid_api_key"),
    ("Bearer wrong", "invalid_api_key"),
])
def test_rejections(header, code):
    with pytest.raises(GatewayError) as exc:
        ClientKeys(("right",)).check(header)
    assert exc.value.status == 401 and exc.value.code == code


def test_without_keys_only_direct_local_clients_are_served():
    keys = ClientKeys(())
    assert keys.check(None) is None
    with pytest.raises(GatewayError) as exc:
        keys.check(None, forwarded=True)
    assert exc.value.status == 401 and "keys create" in exc.value.message


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_a_vanished_keys_file_fails_closed(tmp_path, caplog, how):
    """F5: keys that existed, then an empty or missing file: refuse everyone (a
    new process too, through the marker), with one log line, until keys are back."""
    f = tmp_path / "client_keys"
    key = auth.new_key()
    add_key(f, "laptop", key)
    keys = ClientKeys((), f, fail_closed=True)
    assert keys.check(f"Bearer {key}") == key_id(key)
    if how == "removed":
        f.unlink()
    else:
        f.write_text("")
    with caplog.at_level(logging.ERROR, "gateway.auth"):
        for fresh in (keys, ClientKeys((), f, fail_closed=True)):
            for header in (None, f"Bearer {key}"):
                with pytest.raises(GatewayError) as exc:
                    fresh.check(header)
                assert exc.value.status == 401 and exc.value.code == "client_keys_missing"
    assert caplog.text.count("refusing every request") == 2  # once per ClientKeys
    add_key(f, "again", key)
    assert keys.check(f"Bearer {key}") == key_id(key)


def test_a_public_bind_never_serves_without_keys():
    with pytest.raises(GatewayError) as exc:
        ClientKeys((), required=True).check(None)
    assert exc.value.code == "client_keys_missing"


def test_keyless_local_use_stays_open_without_a_marker(tmp_path):
    assert ClientKeys((), tmp_path / "client_keys", fail_closed=True).check(None) is None


# -- admin keys: the key a caller presents, and who may read /metrics and /status -----------

def basic(password: str, user: str = "admin") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("header, key", [
    (None, None), ("", None), ("Bearer  k-1 ", "k-1"), ("bearer k-1", "k-1"), ("Bearer", None),
    (basic("k-2"), "k-2"), (basic("k:3", user=""), "k:3"), (basic(""), None),
    ("Basic !!!", None), ("Token k", None),
])
def test_presented_key(header, key):
    assert presented_key(header) == key


@pytest.mark.parametrize("header, status, code", [
    (None, 401, "missing_api_key"),
    ("Bearer client-key-1", 403, "admin_key_required"),
    ("Bearer wrong-key", 401, "invalid_api_key"),
    (basic("client-key-1"), 403, "admin_key_required"),
])
def test_admin_keys_refuse_clients_and_anonymous_callers(header, status, code):
    admin = AdminKeys(ClientKeys(("admin-key-1",)), ClientKeys(("client-key-1",)))
    with pytest.raises(GatewayError) as err:
        admin.check(header)
    assert (err.value.status, err.value.code) == (status, code)
    assert "client-key-1" not in err.value.message and "admin-key-1" not in err.value.message


def test_admin_keys_accept_bearer_basic_and_a_digest_in_config():
    admin = AdminKeys(ClientKeys((hash_key("admin-key-1"),)), ClientKeys(("client-key-1",)))
    assert admin.check("Bearer admin-key-1") == key_id("admin-key-1")
    assert admin.check(basic("admin-key-1")) == key_id("admin-key-1")
    # an admin key does not open the API
    with pytest.raises(GatewayError) as err:
        ClientKeys(("client-key-1",)).check("Bearer admin-key-1")
    assert err.value.status == 401


def test_no_admin_key_configured_says_how_to_make_one():
    admin = AdminKeys(ClientKeys(()), ClientKeys(()))
    with pytest.raises(GatewayError) as err:
        admin.check(None)
    assert err.value.status == 401 and "keys create --admin" in err.value.message
