"""Keys, signatures and envelopes."""

from .keys import (
    ED25519,
    ES256,
    LocalSigner,
    PublicKey,
    Signer,
    check_key_window,
    key_id_for,
    load_public_key,
    verify_record_signature,
)
from .keystore import EnvKeyStore, FileKeyStore, KeyStore

__all__ = [
    "ED25519",
    "ES256",
    "EnvKeyStore",
    "FileKeyStore",
    "KeyStore",
    "LocalSigner",
    "PublicKey",
    "Signer",
    "check_key_window",
    "key_id_for",
    "load_public_key",
    "verify_record_signature",
]
