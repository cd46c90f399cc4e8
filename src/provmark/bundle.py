"""Offline bundles (``*.provmark.json``): one record with everything to verify it.

Format (JSON Schema in ``docs/schema/bundle-v1.json``)::

    {"media_type": "application/vnd.provmark.bundle+json;version=1",
     "record": {...the unsigned record...},
     "signature": {"alg", "key_id", "sig"},
     "log": {"origin", "index", "leaf_hash", "tree_size", "proof": [b64...],
             "checkpoint": "<signed note>", "log_key": "<note verifier key>"},
     "public_key": "<PEM>",
     "key": {"key_id", "alg", "purpose", "not_before", "not_after"?, "attestation"}}

``key.attestation`` is a signed note by the log key over :func:`key_statement`, so
the key's validity window is covered by a signature too: any single changed bit
anywhere in a bundle fails verification.

The record's RFC 8785 encoding is the signed payload, so a verifier needs no
provmark code beyond JCS, SHA-256, Ed25519/ECDSA and RFC 9162.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .canonical import canonical_bytes
from .crypto.keys import PublicKey
from .errors import CanonicalizationError, KeyStoreError, ProvmarkError, VerificationError
from .log.note import NoteVerifier, open_note, parse_verifier_key, sign_note
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
    key_info["attestation"] = sign_note(key_statement(key), pm.store.origin, pm.note_signing_key())
    from .bundle_timestamps import bundle_timestamps

    stamps = bundle_timestamps(pm, ev.index, size)
    return {
        **({"timestamps": stamps} if stamps else {}),
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


def key_statement(key: PublicKey) -> str:
    """The note body by which the log key vouches for a record key and its window."""
    spki = hashlib.sha256(key.public_key.encode()).hexdigest()
    return (
        f"provmark-key/v1\n{key.key_id}\n{key.alg}\n{key.purpose}\n{spki}\n"
        f"{key.not_before}\n{key.not_after or '-'}\n"
    )


def _check_attestation(key: PublicKey, attestation: str, log_key: NoteVerifier) -> None:
    try:
        body, _ = open_note(attestation, [log_key])
    except VerificationError as exc:
        raise VerificationError("key_validity", f"key attestation: {exc.detail}") from None
    if body != key_statement(key):
        raise VerificationError(
            "key_validity", "the key, its window or purpose differ from what the log key attested"
        )


def write_bundle(bundle: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")


def _field(obj: Any, name: str, kind: type, where: str = "bundle") -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise VerificationError("bundle_format", f"{where}.{name} is missing")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VerificationError("bundle_format", f"{where}.{name} must be {kind.__name__}")
    return value


_SHAPE: dict[str, tuple[set[str], set[str]]] = {
    "bundle": ({"media_type", "record", "signature", "log", "public_key", "key"}, {"timestamps"}),
    "signature": ({"alg", "key_id", "sig"}, set()),
    "log": ({"origin", "index", "leaf_hash", "proof", "checkpoint", "log_key"}, {"tree_size"}),
    "key": ({"key_id", "alg", "purpose", "not_before", "attestation"}, {"not_after"}),
}


def _shape(obj: Any, where: str) -> None:
    """Exactly the known members: an unknown or renamed one is tampering, not noise."""
    required, optional = _SHAPE[where]
    if not isinstance(obj, dict):
        raise VerificationError("bundle_format", f"{where} must be an object")
    missing = required - obj.keys()
    unknown = obj.keys() - required - optional
    if missing or unknown:
        parts = [
            f"missing {sorted(missing)}" if missing else "",
            f"unknown {sorted(unknown)}" if unknown else "",
        ]
        raise VerificationError("bundle_format", f"{where}: " + ", ".join(p for p in parts if p))


def _b64(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("bundle_format", f"{where} is not base64") from None
    if base64.b64encode(raw).decode() != text:
        raise VerificationError("bundle_format", f"{where} is not canonical base64")
    return raw


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
    _shape(bundle, "bundle")
    for part in ("signature", "log", "key"):
        _shape(bundle[part], part)
    record = _field(bundle, "record", dict)
    signature = _field(bundle, "signature", dict)
    for name in ("alg", "key_id", "sig"):
        _field(signature, name, str, "signature")
    _b64(signature["sig"], "signature.sig")
    lg = _field(bundle, "log", dict)
    origin = _field(lg, "origin", str, "log")
    index = _field(lg, "index", int, "log")
    proof = [
        _b64(p, "log.proof") if isinstance(p, str) else b""
        for p in _field(lg, "proof", list, "log")
    ]
    checkpoint = _field(lg, "checkpoint", str, "log")
    try:
        payload = canonical_bytes(record)
    except CanonicalizationError as exc:
        raise VerificationError("bundle_format", f"record: {exc}") from None
    stated_leaf = _b64(_field(lg, "leaf_hash", str, "log"), "log.leaf_hash")
    if stated_leaf != leaf_hash_of(payload, signature):
        raise VerificationError(
            "inclusion_proof", "log.leaf_hash does not match the record and signature"
        )

    pinned = keys is not None
    attestation: str | None = None
    if keys is None:
        pem = _field(bundle, "public_key", str)
        info = dict(_field(bundle, "key", dict))
        attestation = info.pop("attestation", None)
        if not isinstance(attestation, str):
            raise VerificationError("bundle_format", "bundle.key.attestation is missing")
        try:
            keys = [PublicKey.from_json({**info, "public_key": pem})]
        except (KeyStoreError, TypeError) as exc:
            raise VerificationError("record_signature", f"bundle key: {exc}") from None
    key_text = log_key or _field(lg, "log_key", str, "log")
    try:
        note_key: NoteVerifier = parse_verifier_key(key_text)
    except ProvmarkError as exc:
        raise VerificationError("checkpoint_signature", f"log key: {exc}") from None
    if note_key.key_string() != key_text:
        raise VerificationError("checkpoint_signature", "log key is not in canonical form")
    if log_key is None:
        pinned = False
    if attestation is not None:
        _check_attestation(keys[0], attestation, note_key)
    trust = Trust(
        keys=keys,
        log_key=note_key,
        origin=note_key.name,
        trusted_checkpoint=trusted_checkpoint,
        pinned=pinned,
    )
    evidence = Evidence(
        payload=payload,
        signature=signature,
        index=index,
        proof=proof,
        checkpoint=checkpoint,
        origin=origin,
    )
    verified = verify_evidence(
        evidence, trust, content_sha256=content_sha256, consistency_proof=consistency_proof
    )
    if lg.get("tree_size", verified.tree_size) != verified.tree_size:
        raise VerificationError(
            "bundle_format", f"log.tree_size {lg.get('tree_size')} is not the checkpoint's size"
        )
    if "timestamps" in bundle:  # RFC 3161 tokens of checkpoints that include the record
        from .bundle_timestamps import check_timestamps
        from .log.note import Checkpoint

        check_timestamps(
            bundle["timestamps"],
            origin=origin,
            index=index,
            tree_size=verified.tree_size,
            root=Checkpoint.parse(checkpoint.split("\n\n", 1)[0] + "\n").root_hash,
        )
    return verified
