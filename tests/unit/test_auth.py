"""Client keys: constant-time check, ids, keys file, and the no-key proxy rule."""
from __future__ import annotations

import pytest

from gateway.auth import ClientKeys, append_key, key_id
from gateway.errors import GatewayError


def test_keys_from_config_and_file(tmp_path):
    f = tmp_path / "client_keys"
    keys = ClientKeys(("cfg-key",), f)
    assert keys.check("Bearer cfg-key") == key_id("cfg-key")
    append_key(f, "laptop", "file-key")
    assert keys.check("Bearer file-key") == key_id("file-key")
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert key_id("file-key").startswith("key-") and "file-key" not in key_id("file-key")


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
