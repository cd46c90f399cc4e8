"""Field encryption: AES-256-GCM under per-subject data keys wrapped by a master key.

Envelope encryption in three layers:

* a **master key** (:class:`MasterKey`; :class:`LocalMasterKey` holds the 32-byte
  ``master`` secret of the key store, a cloud KMS can implement the same two calls)
  wraps
* one **data key** per subject (the user a generation acted for, or a tenant), 32
  random bytes, which encrypts
* each **field**: ``AES-256-GCM(data key, nonce, plaintext, aad)``.

The associated data binds a ciphertext to its record id and field path, so a
ciphertext copied to another record or field fails to decrypt. Wrapped data keys
are bound (AES-GCM associated data) to their key id and subject the same way.
Destroying a subject's wrapped data key makes every field encrypted for it
unreadable: that is erasure by crypto-shredding.

Formats (all bytes): a field ciphertext is ``0x01 || nonce(12) || ct+tag``; a
wrapped key from :class:`LocalMasterKey` is ``0x01 || nonce(12) || ct+tag``.
Plaintext values are JSON (UTF-8), so strings, numbers and structures come back
exactly as they went in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import KeyStoreError, VerificationError

__all__ = [
    "DATA_KEY_BYTES",
    "FORMAT_V1",
    "LocalMasterKey",
    "MasterKey",
    "decode_value",
    "decrypt_field",
    "encode_value",
    "encrypt_field",
    "field_aad",
    "new_data_key",
    "wrap_aad",
]

FORMAT_V1 = 1
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
_FIELD_DOMAIN = b"provmark/field/v1\x00"
_WRAP_DOMAIN = b"provmark/data-key/v1\x00"
_ID_DOMAIN = b"provmark/master-key-id/v1"


@runtime_checkable
class MasterKey(Protocol):
    """What wraps and unwraps data keys: the local ``master`` secret, or a cloud KMS.

    ``context`` is associated data (a KMS "encryption context"): unwrapping with a
    different context must fail. ``unwrap`` raises :class:`KeyStoreError` when the
    key cannot unwrap (wrong master key, corrupted row); it never returns garbage.
    """

    @property
    def key_id(self) -> str:
        """A stable, non-secret name of this master key (stored beside wrapped keys)."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...


class LocalMasterKey:
    """A 32-byte master key held in this process (from ``KeyStore.secret("master")``)."""

    __slots__ = ("_aead", "_key_id")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise KeyStoreError("the master key must be exactly 32 bytes")
        self._aead = AESGCM(secret)
        digest = hmac.new(secret, _ID_DOMAIN, hashlib.sha256).hexdigest()
        self._key_id = "local:" + digest[:16]

    def __repr__(self) -> str:
        return f"LocalMasterKey({self._key_id})"

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return bytes([FORMAT_V1]) + nonce + self._aead.encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        if len(wrapped) < 1 + NONCE_BYTES + 16 or wrapped[0] != FORMAT_V1:
            raise KeyStoreError(
                f"wrapped data key is not in a known format (master {self._key_id})"
            )
        nonce = wrapped[1 : 1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, wrapped[1 + NONCE_BYTES :], context)
        except InvalidTag:
            raise KeyStoreError(
                f"master key {self._key_id} cannot unwrap this data key: "
                "wrong master key, or the key row was altered"
            ) from None


def new_data_key() -> bytes:
    return os.urandom(DATA_KEY_BYTES)


def wrap_aad(key_id: str, subject: str) -> bytes:
    """Associated data of a wrapped data key: its id and (hashed) subject."""
    return _WRAP_DOMAIN + _utf8(key_id) + b"\x00" + _utf8(subject)


def field_aad(record_id: str, path: str) -> bytes:
    """Associated data of a field ciphertext: the record and field it belongs to."""
    return _FIELD_DOMAIN + _utf8(record_id) + b"\x00" + _utf8(path)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def encrypt_field(data_key: bytes, record_id: str, path: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, plaintext, field_aad(record_id, path))
    return bytes([FORMAT_V1]) + nonce + sealed


def decrypt_field(data_key: bytes, record_id: str, path: str, ciphertext: bytes) -> bytes:
    """The plaintext, or :class:`VerificationError` (``check="ciphertext"``): nothing partial."""
    if len(ciphertext) < 1 + NONCE_BYTES + 16 or ciphertext[0] != FORMAT_V1:
        raise VerificationError(
            "ciphertext", f"record {record_id} field {path}: not a provmark field ciphertext"
        )
    nonce = ciphertext[1 : 1 + NONCE_BYTES]
    try:
        return AESGCM(data_key).decrypt(
            nonce, ciphertext[1 + NONCE_BYTES :], field_aad(record_id, path)
        )
    except InvalidTag:
        raise VerificationError(
            "ciphertext",
            f"record {record_id} field {path}: ciphertext does not belong to this record "
            "and field, or was altered",
        ) from None


def encode_value(value: Any) -> bytes:
    """A JSON value as the bytes that get encrypted (UTF-8 JSON, lone surrogates kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def decode_value(data: bytes) -> Any:
    return json.loads(data.decode("utf-8", "surrogatepass"))
