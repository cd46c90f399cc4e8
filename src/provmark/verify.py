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
The checks themselves run in :class:`provmark.verification.Verifier`; this module keeps
the evidence and trust types and the names other code imports.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .crypto.keys import PublicKey
from .errors import VerificationError
from .log.note import Checkpoint, NoteVerifier, open_checkpoint
from .record import LogPosition, Record, log_entry, record_from_payload


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


def parse_checkpoint_body(note: str) -> Checkpoint:
    """The checkpoint in a signed note, without checking signatures."""
    body = note.split("\n\n", 1)[0] + "\n"
    return Checkpoint.parse(body)
