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

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..canonical import canonical_bytes
from ..crypto.keys import PublicKey, load_public_key
from ..crypto.revocation import Revocation, open_revocations
from ..errors import CanonicalizationError, KeyStoreError, ProvmarkError, VerificationError
from ..log.note import NoteVerifier, open_note, parse_verifier_key, sign_note
from ..store.base import StoredRecord
from ..verify import Evidence, Trust, Verified, leaf_hash_of

if TYPE_CHECKING:
    from ..log.service import Log
    from ..verification.report import Report
    from ..witness.policy import TrustPolicy

MEDIA_TYPE = "application/vnd.provmark.bundle+json;version=1"
PIN_WITHOUT_WINDOW = "1970-01-01T00:00:00Z"  # a key pinned as a bare PEM (``--key``)


def make_bundle(log: Log, stored: StoredRecord) -> dict[str, Any]:
    ev = log.evidence(stored)
    key = next((k for k in log.public_keys() if k.key_id == stored.signature["key_id"]), None)
    if key is None:
        raise KeyStoreError(f"public key {stored.signature['key_id']} is not known to this store")
    size = int(ev.checkpoint.split("\n")[1])
    key_info = {k: v for k, v in key.to_json().items() if k != "public_key"}
    key_info["attestation"] = sign_note(key_statement(key), log.origin, log.note_signing_key())
    from .timestamps import bundle_timestamps

    stamps = bundle_timestamps(log, ev.index, size)
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
            "log_key": log.log_verifier.key_string(),
        },
        "public_key": key.public_key,
        "key": key_info,
        "revocations": log.signed_revocations(),
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
    "bundle": (
        {"media_type", "record", "signature", "log", "public_key", "key"},
        {"timestamps", "revocations"},
    ),
    "signature": ({"alg", "key_id", "sig"}, set()),
    "log": ({"origin", "index", "leaf_hash", "tree_size", "proof", "checkpoint", "log_key"}, set()),
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
    policy: TrustPolicy | None = None,
) -> Verified:
    """Verify a bundle offline. ``keys``/``log_key`` pin trust; else the bundle's own are used.
    Returns :class:`Verified` or raises :class:`VerificationError` naming the failed check."""
    return bundle_report(
        bundle,
        content_sha256=content_sha256,
        keys=keys,
        log_key=log_key,
        trusted_checkpoint=trusted_checkpoint,
        consistency_proof=consistency_proof,
        policy=policy,
    ).raise_for_failure()


def _pinned_key(bundled: PublicKey, pins: list[PublicKey]) -> PublicKey:
    """The pinned key the bundle's (attested) key must be: same id and key material. The
    pinned window wins (a key set exported after a rotation closes a window that a bundle
    made before it still shows open); every byte of the bundle's own ``key`` is covered by
    its attestation anyway."""
    pin = next((k for k in pins if k.key_id == bundled.key_id), None)
    if pin is None:
        raise VerificationError(
            "record_signature", f"key {bundled.key_id} of the bundle is not among the pinned keys"
        )
    if load_public_key(pin.public_key).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    ) != load_public_key(bundled.public_key).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    ):
        raise VerificationError(
            "record_signature", f"the bundle's public key differs from the pinned key {pin.key_id}"
        )
    if pin.not_before == PIN_WITHOUT_WINDOW:  # a bare --key PEM: the attested window holds
        return bundled
    return pin


def _bundle_evidence(
    bundle: dict[str, Any], keys: list[PublicKey] | None, log_key: str | None
) -> tuple[Evidence, Trust, list[Revocation], int]:
    """Parse a bundle and check it against the pins; raise the failed check."""
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
    tree_size = _field(lg, "tree_size", int, "log")
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

    key_text = _field(lg, "log_key", str, "log")
    if log_key is not None and key_text != log_key:
        raise VerificationError(
            "checkpoint_signature", "the bundle's log.log_key differs from the pinned log key"
        )
    try:
        note_key: NoteVerifier = parse_verifier_key(key_text)
    except ProvmarkError as exc:
        raise VerificationError("checkpoint_signature", f"log key: {exc}") from None
    if note_key.key_string() != key_text:
        raise VerificationError("checkpoint_signature", "log key is not in canonical form")

    pem = _field(bundle, "public_key", str)
    info = dict(_field(bundle, "key", dict))
    attestation = info.pop("attestation", None)
    if not isinstance(attestation, str):
        raise VerificationError("bundle_format", "bundle.key.attestation is missing")
    try:
        bundled = PublicKey.from_json({**info, "public_key": pem})
    except (KeyStoreError, TypeError) as exc:
        raise VerificationError("record_signature", f"bundle key: {exc}") from None
    _check_attestation(bundled, attestation, note_key)  # pinned or not: every byte signed
    trusted_keys = [bundled] if keys is None else [_pinned_key(bundled, keys)]

    revocations: list[Revocation] = []
    if "revocations" in bundle:
        note = _field(bundle, "revocations", str)
        revocations = open_revocations(note, note_key)
    trust = Trust(
        keys=trusted_keys,
        log_key=note_key,
        origin=note_key.name,
        pinned=keys is not None and log_key is not None,
    )
    evidence = Evidence(
        payload=payload,
        signature=signature,
        index=index,
        proof=proof,
        checkpoint=checkpoint,
        origin=origin,
    )
    return evidence, trust, revocations, tree_size


def bundle_report(
    bundle: dict[str, Any],
    *,
    content_sha256: str | None = None,
    keys: list[PublicKey] | None = None,
    log_key: str | None = None,
    trusted_checkpoint: tuple[int, bytes] | None = None,
    consistency_proof: list[bytes] | None = None,
    policy: TrustPolicy | None = None,
) -> Report:
    """Every check of a bundle, as the one :class:`~provmark.verification.Verifier` runs
    them. The bundle's signed revocation list always applies; ``policy`` adds witness
    quorum and pinned revocations."""
    from dataclasses import replace

    from ..verification.report import FAIL, CheckResult
    from ..verification.verifier import Verifier
    from ..witness.policy import NoteHistory, TrustPolicy

    policy = policy or TrustPolicy()
    content, consistency = content_sha256 is not None, trusted_checkpoint is not None
    try:
        evidence, trust, revocations, tree_size = _bundle_evidence(bundle, keys, log_key)
    except VerificationError as exc:
        about = {"content_sha256": content_sha256} if content_sha256 else {}
        return Verifier(None, policy.policies()).not_run(
            exc, subject=about, content=content, consistency=consistency
        )
    policy = policy.with_revocations(
        revocations, "bundle's revocation list (signed by the log key)"
    )
    trust = replace(trust, trusted_checkpoint=trusted_checkpoint)
    stamps, stamp_error = _bundle_stamps(bundle, evidence, tree_size, policy)
    verifier = Verifier(trust, policy.policies())
    record_id = bundle["record"].get("record_id")
    report = verifier.verify(
        evidence,
        content_sha256=content_sha256,
        consistency_proof=consistency_proof,
        history=NoteHistory(policy, stamps),
        subject={"record_id": record_id} if isinstance(record_id, str) else {},
    )
    late = None
    if report.outcome is not None and report.outcome.tree_size != tree_size:
        late = VerificationError(
            "bundle_format", f"log.tree_size {tree_size} is not the checkpoint's size"
        )
    late = late or stamp_error
    if report.outcome is not None and late is not None:
        report.checks.append(CheckResult(late.check, FAIL, late.detail))
        report.outcome = None
    return report


def _bundle_stamps(
    bundle: dict[str, Any], evidence: Evidence, tree_size: int, policy: TrustPolicy
) -> tuple[list[tuple[str, str]], VerificationError | None]:
    """The bundle's RFC 3161 tokens (see :mod:`provmark.bundle.timestamps`): every one is
    checked; as evidence of time (``timestamp``, revocation) only with a pinned TSA root."""
    if "timestamps" not in bundle:
        return [], None
    from ..log.note import Checkpoint
    from .timestamps import check_timestamps

    try:
        root = Checkpoint.parse(evidence.checkpoint.split("\n\n", 1)[0] + "\n").root_hash
        infos = check_timestamps(
            bundle["timestamps"],
            origin=evidence.origin,
            index=evidence.index,
            tree_size=tree_size,
            root=root,
            tsa=policy.tsa,
        )
    except VerificationError as exc:
        return [], exc
    except ProvmarkError as exc:
        return [], VerificationError("bundle_format", f"log.checkpoint: {exc}")
    if policy.tsa is None:
        return [], None
    found = [
        (
            info.latest,
            f"checkpoint of size {entry['size']} time-stamped by {info.tsa} at {info.gen_time}",
        )
        for entry, info in zip(bundle["timestamps"], infos, strict=True)
    ]
    return sorted(found), None
