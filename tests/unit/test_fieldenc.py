"""Field encryption: AES-256-GCM round trips, AAD binding, tampering, key wrapping."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provmark.crypto.fieldenc import (
    DATA_KEY_BYTES,
    LocalMasterKey,
    MasterKey,
    decode_value,
    decrypt_field,
    encode_value,
    encrypt_field,
    new_data_key,
    wrap_aad,
)
from provmark.errors import KeyStoreError, VerificationError

KEY = bytes(range(32))
RID = "01906e2a-8a00-7000-8000-000000000001"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values, path=st.text(min_size=1, max_size=40))
def test_round_trip_is_exact(value: Any, path: str) -> None:
    data = encode_value(value)
    sealed = encrypt_field(KEY, RID, path, data)
    assert len(data) < 8 or data not in sealed
    assert decode_value(decrypt_field(KEY, RID, path, sealed)) == value


@settings(max_examples=150, deadline=None)
@given(
    plaintext=st.binary(max_size=300),
    where=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_flipped_byte_fails(plaintext: bytes, where: int, flip: int) -> None:
    sealed = bytearray(encrypt_field(KEY, RID, "input.snapshot", plaintext))
    sealed[where % len(sealed)] ^= flip
    with pytest.raises(VerificationError) as err:
        decrypt_field(KEY, RID, "input.snapshot", bytes(sealed))
    assert err.value.check == "ciphertext"


@settings(max_examples=50, deadline=None)
@given(cut=st.integers(min_value=0, max_value=39))
def test_truncated_ciphertext_fails(cut: int) -> None:
    sealed = encrypt_field(KEY, RID, "p", b"secret text")
    with pytest.raises(VerificationError):
        decrypt_field(KEY, RID, "p", sealed[:cut])


def test_ciphertext_is_bound_to_record_and_field() -> None:
    sealed = encrypt_field(KEY, RID, "input.snapshot", b'"jo@example.com"')
    other = RID[:-1] + "2"
    with pytest.raises(VerificationError, match="does not belong to this record and field"):
        decrypt_field(KEY, other, "input.snapshot", sealed)
    with pytest.raises(VerificationError):
        decrypt_field(KEY, RID, "error.message", sealed)
    with pytest.raises(VerificationError):
        decrypt_field(new_data_key(), RID, "input.snapshot", sealed)


def test_nonces_differ_so_equal_values_do_not_repeat() -> None:
    a = encrypt_field(KEY, RID, "p", b"same")
    b = encrypt_field(KEY, RID, "p", b"same")
    assert a != b and a[1:13] != b[1:13]


def test_local_master_key_wraps_with_context() -> None:
    master = LocalMasterKey(os.urandom(32))
    assert isinstance(master, MasterKey)
    dek = new_data_key()
    assert len(dek) == DATA_KEY_BYTES
    wrapped = master.wrap(dek, wrap_aad("k1", "hmac-sha256:aa"))
    assert dek not in wrapped
    assert master.unwrap(wrapped, wrap_aad("k1", "hmac-sha256:aa")) == dek
    with pytest.raises(KeyStoreError, match="cannot unwrap"):
        master.unwrap(wrapped, wrap_aad("k1", "hmac-sha256:bb"))  # moved to another subject
    with pytest.raises(KeyStoreError, match="wrong master key"):
        LocalMasterKey(os.urandom(32)).unwrap(wrapped, wrap_aad("k1", "hmac-sha256:aa"))
    with pytest.raises(KeyStoreError, match="known format"):
        master.unwrap(b"\x02" + wrapped[1:], wrap_aad("k1", "hmac-sha256:aa"))


def test_master_key_id_is_stable_and_not_the_secret() -> None:
    secret = os.urandom(32)
    assert LocalMasterKey(secret).key_id == LocalMasterKey(secret).key_id
    assert LocalMasterKey(secret).key_id != LocalMasterKey(os.urandom(32)).key_id
    assert secret.hex()[:16] not in LocalMasterKey(secret).key_id
    assert "key" not in repr(LocalMasterKey(secret)).lower().replace("masterkey", "")
    with pytest.raises(KeyStoreError):
        LocalMasterKey(b"short")


def test_values_keep_their_type() -> None:
    for value in ["tëxt \ud800 lone surrogate", 12345678901234567890, 0.1, None, {"a": [1, "b"]}]:
        assert decode_value(encode_value(value)) == value
