"""Thinking-block signatures: our reasoning items round-trip, anything else is not ours."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.dialects.messages.signature import decode_signature
from gateway.dialects.messages.signature import encode_signature


def test_signature_round_trip_and_prefix():
    item = {"id": "rs_abc", "encrypted_content": "gAAAAB" + "x" * 500, "summary": []}
    sig = encode_signature(item)
    assert sig.startswith("cgw1.")
    assert "=" not in sig and "+" not in sig and "/" not in sig
    assert decode_signature(sig) == {"id": "rs_abc", "encrypted_content": item["encrypted_content"]}
    assert encode_signature(dict(item)) == sig  # deterministic


FOREIGN = [None, "", "PROBE_SIG_msg_1", "EqQBCkYIBxgCKkB" * 4, "cgw1.", "cgw1.!!!!", "cgw1.bm90IGpzb24",
           "cgw1.W10", "cgw1.eyJpZCI6IDV9", 42, "cgw1.é"]


@pytest.mark.parametrize("sig", FOREIGN)
def test_foreign_signatures_are_not_ours(sig):
    assert decode_signature(sig) is None


@given(st.text(max_size=40), st.text(max_size=200))
def test_signature_property(item_id, encrypted):
    assert decode_signature(encode_signature({"id": item_id, "encrypted_content": encrypted})) == {
        "id": item_id, "encrypted_content": encrypted}
