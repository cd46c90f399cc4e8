"""Verification as a policy over evidence.

Evidence for one record is its exact payload bytes, signature, log index,
inclusion proof and a signed checkpoint. The same checks run whether the
evidence comes from a store or from an offline bundle:

1. ``output_hash``      the content's SHA-256 is the one the record states
2. ``record_signature`` the signature over the payload bytes holds, by a trusted key
3. ``key_validity``     that key was valid when the record was made
4. ``checkpoint_signature`` the checkpoint is signed by the log key, for this origin
5. ``inclusion_proof``  the record's leaf is in the tree the checkpoint commits to
6. ``consistency``      (given an older trusted checkpoint) the log only grew

Each failure raises :class:`~provmark.errors.VerificationError` naming the check.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .crypto.keys import PublicKey, check_key_window, verify_record_signature
from .errors import VerificationError
from .log.merkle import verify_consistency, verify_inclusion
from .log.note import Checkpoint, NoteVerifier, open_checkpoint
from .record import LogPosition, Record, log_entry, output_hashes, record_from_payload


@dataclass(frozen=True)
class Evidence:
    payload: bytes
    signature: dict[str, str]
    index: int
    proof: list[bytes]
    checkpoint: str  # signed note text
    origin: str


@dataclass(frozen=True)
class Trust:
    """What the verifier trusts: record keys, the log's note key, optionally an old checkpoint.

    A Trust remembers parsed keys and checkpoints it has already verified, so
    verifying many records against one checkpoint checks its signature once.
    """

    keys: Sequence[PublicKey]
    log_key: NoteVerifier
    origin: str
    trusted_checkpoint: tuple[int, bytes] | None = None  # (size, root) seen before
    pinned: bool = True  # False when keys come from the evidence itself
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def key(self, key_id: str) -> PublicKey | None:
        by_id = self._memo.get("keys")
        if by_id is None:
            by_id = self._memo["keys"] = {k.key_id: k for k in self.keys}
        return by_id.get(key_id)

    def checkpoint(self, note: str) -> Checkpoint:
        """The checkpoint in a signed note, after checking the log key's signature."""
        cached = self._memo.get(("note", note))
        if cached is None:
            try:
                cached, _ = open_checkpoint(note, [self.log_key], origin=self.origin)
            except VerificationError as exc:
                raise VerificationError("checkpoint_signature", exc.detail) from None
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[("note", note)] = cached
        return cached


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Verified:
    """A record that passed every check, with the checks and its log position."""

    payload: bytes
    signature: dict[str, str]
    checks: list[Check]
    index: int
    tree_size: int
    checkpoint: str
    leaf_hash: bytes
    proof: list[bytes] = field(default_factory=list)

    @cached_property
    def record(self) -> Record:
        return record_from_payload(
            self.payload,
            signature=self.signature,
            log=LogPosition(index=self.index, leaf_hash=base64.b64encode(self.leaf_hash).decode()),
        )

    @property
    def record_id(self) -> str:
        return self.record.record_id

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": True,
            "record_id": self.record.record_id,
            "slug": self.record.slug,
            "model": self.record.model.name,
            "model_version": self.record.model.version,
            "generated_at": self.record.generated_at,
            "log_index": self.index,
            "tree_size": self.tree_size,
            "checks": [c.to_json() for c in self.checks],
        }


def leaf_hash_of(payload: bytes, signature: dict[str, str]) -> bytes:
    return hashlib.sha256(b"\x00" + log_entry(payload, signature)).digest()


def verify_evidence(
    evidence: Evidence,
    trust: Trust,
    *,
    content_sha256: str | None = None,
    consistency_proof: Sequence[bytes] | None = None,
) -> Verified:
    """Run every check; return :class:`Verified` or raise the first failure."""
    checks: list[Check] = []
    try:
        data = json.loads(evidence.payload)
    except ValueError:
        raise VerificationError("record_payload", "record bytes are not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("generated_at"), str):
        raise VerificationError("record_payload", "record has no generated_at time")

    if content_sha256 is not None:
        stated = output_hashes(data)  # output, and every output of a multi-output (v2) record
        if content_sha256 not in stated:
            recorded = ", ".join(stated) or "no output hash"
            raise VerificationError(
                "output_hash",
                f"content sha256 {content_sha256} differs from the recorded {recorded}",
            )
        checks.append(
            Check("output_hash", True, f"content sha256 {content_sha256} matches the record")
        )

    sig = evidence.signature
    key = trust.key(sig.get("key_id", ""))
    if key is None:
        raise VerificationError(
            "record_signature", f"unknown key id {sig.get('key_id')!r}; not among the trusted keys"
        )
    if key.purpose != "records":
        raise VerificationError(
            "record_signature", f"key {key.key_id} is a {key.purpose!r} key, not a record key"
        )
    if key.alg != sig.get("alg"):
        raise VerificationError(
            "record_signature",
            f"signature says alg {sig.get('alg')!r}, key {key.key_id} is {key.alg}",
        )
    verify_record_signature(key, evidence.payload, sig.get("sig", ""))
    how = "pinned" if trust.pinned else "embedded in the bundle (not pinned: pass --key to pin)"
    checks.append(
        Check("record_signature", True, f"{key.alg} signature by key {key.key_id}, {how}")
    )

    generated_at = data["generated_at"]
    check_key_window(key, generated_at)
    checks.append(Check("key_validity", True, f"key {key.key_id} valid at {generated_at}"))

    if evidence.origin != trust.origin:
        raise VerificationError(
            "checkpoint_signature", f"log origin {evidence.origin!r}, expected {trust.origin!r}"
        )
    checkpoint = trust.checkpoint(evidence.checkpoint)
    checks.append(
        Check(
            "checkpoint_signature",
            True,
            f"checkpoint of size {checkpoint.size} signed by {trust.log_key.name}",
        )
    )

    leaf = leaf_hash_of(evidence.payload, evidence.signature)
    verify_inclusion(leaf, evidence.index, checkpoint.size, evidence.proof, checkpoint.root_hash)
    checks.append(
        Check(
            "inclusion_proof",
            True,
            f"leaf {evidence.index} is in the tree of size {checkpoint.size} "
            f"(root {base64.b64encode(checkpoint.root_hash).decode()})",
        )
    )

    if trust.trusted_checkpoint is not None:
        old_size, old_root = trust.trusted_checkpoint
        verify_consistency(
            old_size, checkpoint.size, old_root, checkpoint.root_hash, consistency_proof or []
        )
        checks.append(
            Check(
                "consistency",
                True,
                f"tree of size {old_size} is a prefix of size {checkpoint.size}",
            )
        )

    return Verified(
        payload=evidence.payload,
        signature=evidence.signature,
        leaf_hash=leaf,
        checks=checks,
        index=evidence.index,
        tree_size=checkpoint.size,
        checkpoint=evidence.checkpoint,
        proof=list(evidence.proof),
    )


def parse_checkpoint_body(note: str) -> Checkpoint:
    """The checkpoint in a signed note, without checking signatures."""
    body = note.split("\n\n", 1)[0] + "\n"
    return Checkpoint.parse(body)
