"""Signing keys: signers, public keys with validity windows, key ids.

Key id = hex of the first 8 bytes of SHA-256 of the raw public key (32 bytes
for Ed25519; the 65-byte uncompressed point for P-256). Record signatures are
raw: 64 bytes for Ed25519 and ``r || s`` (64 bytes) for ECDSA P-256, as in JWS.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..errors import KeyStoreError, VerificationError
from ..record import parse_time

ED25519 = "Ed25519"
ES256 = "ES256"
ALGORITHMS = (ED25519, ES256)

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKeyObject = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@runtime_checkable
class Signer(Protocol):
    """Anything that signs bytes: a local key, an HSM or a cloud KMS.

    ``sign`` returns the raw signature (see module doc). A KMS adapter only has
    to implement these four members.
    """

    @property
    def alg(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...

    def public_key_pem(self) -> str: ...


def raw_public_key(key: PublicKeyObject) -> bytes:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def key_id_for(key: PublicKeyObject) -> str:
    return hashlib.sha256(raw_public_key(key)).digest()[:8].hex()


def alg_of(key: PublicKeyObject | PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return ED25519
    if isinstance(key.curve, ec.SECP256R1):
        return ES256
    raise KeyStoreError(f"unsupported key type {type(key).__name__}; use Ed25519 or P-256")


def generate_private_key(alg: str = ED25519) -> PrivateKey:
    if alg == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if alg == ES256:
        return ec.generate_private_key(ec.SECP256R1())
    raise KeyStoreError(f"unknown algorithm {alg!r}; choose one of {', '.join(ALGORITHMS)}")


class LocalSigner:
    """A signer over a private key held in this process."""

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()
        self._alg = alg_of(private_key)
        self._key_id = key_id_for(self._public)

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def private_key(self) -> PrivateKey:
        return self._key

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        der = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def __repr__(self) -> str:  # never show key material
        return f"LocalSigner(alg={self._alg!r}, key_id={self._key_id!r})"


def public_pem(key: PublicKeyObject) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str | bytes) -> PublicKeyObject:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyStoreError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise KeyStoreError(f"unsupported public key type {type(key).__name__}")
    alg_of(key)
    return key


def verify_raw(key: PublicKeyObject, data: bytes, sig: bytes) -> bool:
    """True when ``sig`` (raw format) is a valid signature of ``data``."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, data)
        else:
            if len(sig) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class PublicKey:
    """A public key as verifiers see it: id, algorithm, PEM and validity window."""

    key_id: str
    alg: str
    public_key: str  # PEM
    not_before: str  # RFC 3339
    not_after: str | None = None  # None: still current
    purpose: str = "records"
    _parsed: list[PublicKeyObject] = field(default_factory=list, compare=False, repr=False)

    def key(self) -> PublicKeyObject:
        if not self._parsed:  # parse the PEM once per PublicKey
            self._parsed.append(load_public_key(self.public_key))
        return self._parsed[0]

    def valid_at(self, when: str) -> bool:
        t = parse_time(when)
        if t < parse_time(self.not_before):
            return False
        return self.not_after is None or t <= parse_time(self.not_after)

    def to_json(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("key_id", "alg", "public_key", "not_before", "not_after", "purpose")
            if getattr(self, k) is not None
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicKey:
        try:
            key = cls(
                key_id=data["key_id"],
                alg=data["alg"],
                public_key=data["public_key"],
                not_before=data["not_before"],
                not_after=data.get("not_after"),
                purpose=data.get("purpose", "records"),
            )
        except KeyError as exc:
            raise KeyStoreError(f"public key entry lacks {exc.args[0]!r}") from None
        if key_id_for(key.key()) != key.key_id:
            raise KeyStoreError(f"key {key.key_id}: key id does not match the public key")
        return key


def verify_record_signature(key: PublicKey, payload: bytes, sig_b64: str) -> None:
    """Raise :class:`VerificationError` ``record_signature`` unless the signature holds."""
    try:
        sig = base64.b64decode(sig_b64, validate=True)
    except ValueError:
        raise VerificationError("record_signature", "signature is not valid base64") from None
    if not verify_raw(key.key(), payload, sig):
        raise VerificationError(
            "record_signature", f"signature does not match the record bytes (key {key.key_id})"
        )


# A record is stamped on the caller's thread and signed moments later by the
# writer; around a rotation the new key may sign a record stamped just before it.
ROTATION_SKEW = timedelta(seconds=60)


def check_key_window(key: PublicKey, signed_at: str) -> None:
    try:
        t = parse_time(signed_at)
        starts = parse_time(key.not_before) - ROTATION_SKEW
        ends = parse_time(key.not_after) if key.not_after else None
    except ValueError as exc:
        raise VerificationError("key_validity", f"key {key.key_id}: {exc}") from None
    if t < starts or (ends is not None and t > ends):
        window = f"{key.not_before} .. {key.not_after or 'now'}"
        raise VerificationError(
            "key_validity",
            f"key {key.key_id} was not valid at {signed_at} (valid {window})",
        )
