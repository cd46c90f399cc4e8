"""Offline bundles (``*.provmark.json``): one record with everything to verify it.

Format (JSON Schema in ``docs/schema/bundle-v1.json``)::

    {"media_type": "application/vnd.provmark.bundle+json;version=1",
     "record": {...the unsigned record...},
     "signature": {"alg", "key_id", "sig"},
     "log": {"origin", "index", "leaf_hash", "tree_size", "proof": [b64...],
             "checkpoint": "<signed note>", "log_key": "<note verifier key>"},
     "public_key": "<PEM>", "key": {"key_id", "alg", "not_before", "not_after"?}}

The record's RFC 8785 encoding is the signed payload, so a verifier needs no
provmark code beyond JCS, SHA-256, Ed25519/ECDSA and RFC 9162.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .canonical import canonical_bytes
from .crypto.keys import PublicKey
from .errors import CanonicalizationError, KeyStoreError, VerificationError
from .log.note import NoteVerifier, parse_verifier_key
from .store.base import StoredRecord
from .verify import Evidence, Trust, Verified, leaf_hash_of, verify_evidence

if TYPE_CHECKING:
    from .client import Provmark

MEDIA_TYPE = "application/vnd.provmark.bundle+json;version=1"


def make_bundle(pm: Provmark, stored: StoredRecord) -> dict[str, Any]:
    ev = pm.evidence(stored)
    key = next((k for k in pm.public_keys() if k.key_id == stored.signature["key_id"]), None)
    if key is None:
        raise KeyStoreError(f"public key {stored.signature['key_id']} is not known to this store")
    size = int(ev.checkpoint.split("\n")[1])
    key_info = {k: v for k, v in key.to_json().items() if k != "public_key"}
    return {
        "media_type": MEDIA_TYPE,
        "record": json.loads(stored.payload),
        "signature": dict(stored.signature),
        "log": {
            "origin": ev.origin,
            "index": ev.index,
            "leaf_hash": base64.b64encode(leaf_hash_of(ev.payload, ev.signature)).decode(),
            "tree_size": size,
            "proof": [base64.b64encode(p).decode() for p in ev.proof],
            "checkpoint": ev.checkpoint,
            "log_key": pm.log_verifier.key_string(),
        },
        "public_key": key.public_key,
        "key": key_info,
    }


def write_bundle(bundle: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")


def _field(obj: Any, name: str, kind: type, where: str = "bundle") -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise VerificationError("bundle_format", f"{where}.{name} is missing")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VerificationError("bundle_format", f"{where}.{name} must be {kind.__name__}")
    return value


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("bundle_format", f"{where} is not base64") from None


def load_bundle(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise VerificationError("bundle_format", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise VerificationError("bundle_format", f"{path} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise VerificationError("bundle_format", "a bundle is a JSON object")
    return data


def verify_bundle(
    bundle: dict[str, Any],
    *,
    content_sha256: str | None = None,
    keys: list[PublicKey] | None = None,
    log_key: str | None = None,
    trusted_checkpoint: tuple[int, bytes] | None = None,
    consistency_proof: list[bytes] | None = None,
) -> Verified:
    """Verify a bundle offline. ``keys``/``log_key`` pin trust; else the bundle's own are used."""
    if bundle.get("media_type") != MEDIA_TYPE:
        raise VerificationError(
            "bundle_format", f"media_type is {bundle.get('media_type')!r}, want {MEDIA_TYPE!r}"
        )
    record = _field(bundle, "record", dict)
    signature = _field(bundle, "signature", dict)
    for name in ("alg", "key_id", "sig"):
        _field(signature, name, str, "signature")
    lg = _field(bundle, "log", dict)
    origin = _field(lg, "origin", str, "log")
    index = _field(lg, "index", int, "log")
    proof = [_b64(p, "log.proof") if isinstance(p, str) else b"" for p in _field(lg, "proof", list, "log")]
    checkpoint = _field(lg, "checkpoint", str, "log")
    try:
        payload = canonical_bytes(record)
    except CanonicalizationError as exc:
        raise VerificationError("bundle_format", f"record: {exc}") from None
    stated_leaf = _b64(_field(lg, "leaf_hash", str, "log"), "log.leaf_hash")
    if stated_leaf != leaf_hash_of(payload, signature):
        raise VerificationError("inclusion_proof", "log.leaf_hash does not match the record and signature")

    pinned = keys is not None
    if keys is None:
        pem = _field(bundle, "public_key", str)
        info = _field(bundle, "key", dict)
        try:
            keys = [PublicKey.from_json({**info, "public_key": pem})]
        except KeyStoreError as exc:
            raise VerificationError("record_signature", f"bundle key: {exc}") from None
    try:
        note_key: NoteVerifier = parse_verifier_key(log_key or _field(lg, "log_key", str, "log"))
    except Exception as exc:
        raise VerificationError("checkpoint_signature", f"log key: {exc}") from None
    if log_key is None:
        pinned = False
    trust = Trust(
        keys=keys,
        log_key=note_key,
        origin=note_key.name,
        trusted_checkpoint=trusted_checkpoint,
        pinned=pinned,
    )
    evidence = Evidence(
        payload=payload, signature=signature, index=index, proof=proof, checkpoint=checkpoint, origin=origin
    )
    return verify_evidence(
        evidence, trust, content_sha256=content_sha256, consistency_proof=consistency_proof
    )
