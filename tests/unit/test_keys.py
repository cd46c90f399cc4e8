from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from provmark.crypto.keys import (
    ED25519,
    ES256,
    LocalSigner,
    check_key_window,
    generate_private_key,
    key_id_for,
    raw_public_key,
    verify_record_signature,
)
from provmark.crypto.keystore import EnvKeyStore, FileKeyStore
from provmark.errors import KeyStoreError, VerificationError


def test_key_id_is_first_8_bytes_of_sha256_of_raw_key() -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id_for(key.public_key()) == hashlib.sha256(raw).digest()[:8].hex()
    p256 = generate_private_key(ES256)
    assert len(raw_public_key(p256.public_key())) == 65


@pytest.mark.parametrize("alg", [ED25519, ES256])
def test_file_keystore_creates_private_key_0600_and_publishes(tmp_path: Path, alg: str) -> None:
    store = FileKeyStore(tmp_path / "keys", alg=alg)
    signer = store.signer("records")
    path = tmp_path / "keys" / "records.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signer.alg == alg
    assert "PRIVATE" not in repr(signer)
    (published,) = [k for k in store.public_keys() if k.purpose == "records"]
    assert published.key_id == signer.key_id and published.not_after is None
    sig = base64.b64encode(signer.sign(b"payload")).decode()
    verify_record_signature(published, b"payload", sig)
    with pytest.raises(VerificationError, match="record_signature"):
        verify_record_signature(published, b"payl0ad", sig)
    # a second store over the same folder loads the same key
    assert FileKeyStore(tmp_path / "keys").signer("records").key_id == signer.key_id


def test_log_key_is_always_ed25519(tmp_path: Path) -> None:
    assert FileKeyStore(tmp_path, alg=ES256).signer("log").alg == ED25519


def test_rotation_keeps_old_public_key_with_window(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path)
    old = store.signer("records").key_id
    new = store.rotate("records")
    keys = {k.key_id: k for k in store.public_keys()}
    assert new.key_id != old and store.signer("records").key_id == new.key_id
    assert keys[old].not_after is not None and keys[new.key_id].not_after is None
    check_key_window(keys[old], keys[old].not_before)
    with pytest.raises(VerificationError, match="key_validity"):
        check_key_window(keys[old], "2999-01-01T00:00:00.000000Z")


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    FileKeyStore(tmp_path).signer("records")
    (tmp_path / "records.pem").chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        FileKeyStore(tmp_path).signer("records")


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "records.pem").write_bytes(b"garbage")
    (tmp_path / "records.pem").chmod(0o600)
    with pytest.raises(KeyStoreError, match=r"records\.pem"):
        FileKeyStore(tmp_path).signer("records")


def test_env_keystore(tmp_path: Path) -> None:
    key = generate_private_key(ED25519)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    secret = base64.b64encode(b"s" * 32).decode()
    store = EnvKeyStore({"PROVMARK_SIGNING_KEY": pem, "PROVMARK_SECRET_ACTOR": secret})
    assert store.signer("records").key_id == LocalSigner(key).key_id
    assert store.signer("log").key_id == store.signer("records").key_id
    assert store.secret("actor") == b"s" * 32
    with pytest.raises(KeyStoreError):
        store.rotate()
    with pytest.raises(KeyStoreError, match="PROVMARK_SIGNING_KEY"):
        EnvKeyStore({})
