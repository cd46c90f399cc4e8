"""``Log``: one transparency log and what it proves.

The service every reading feature takes (bundles, verification, timestamps, witnesses,
audit, archives): the store, the log key that signs its checkpoints, the signed-note
verifier, inclusion and consistency proofs, the evidence of a stored record, the public
keys and revocations that judge it, and this home's memory of the largest checkpoint
seen (rollback and fork detection, :mod:`provmark.log.memory`).

It never captures: ``settle`` is how a reader waits for records still being written
(the embedded client wires it to its writer's ``flush``; a log opened on its own has
nothing pending).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..crypto.keys import LocalSigner, PublicKey, Signer, load_public_key
from ..crypto.keystore import KeyStore, existing_signer, home_of
from ..crypto.revocation import Revocation, RevocationList, revocations_path, sign_revocations
from ..errors import VerificationError
from ..store.base import Store, StoredCheckpoint, StoredRecord
from ..store.features import StoreFile
from ..verify import Evidence, Trust
from .memory import CheckpointMemory, Problem
from .merkle import consistency_proof, inclusion_proof
from .note import Checkpoint, NoteVerifier

__all__ = ["Log"]

log = logging.getLogger("provmark")


class _NoteKey:
    """Adapts a :class:`Signer` holding an Ed25519 key to the signed-note API."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._public = load_public_key(signer.public_key_pem())

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data)

    def public_key(self) -> Any:
        return self._public


class Log:
    """A store's log: checkpoints signed by the ``log`` key of ``keystore``.

    ``read_only`` creates no key (a missing log key is a verify-only signer) and writes
    no public key into the store.
    """

    def __init__(
        self,
        store: Store,
        keystore: KeyStore,
        *,
        read_only: bool = False,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.keystore = keystore
        if read_only:
            self.log_signer = existing_signer(keystore, store.public_keys(), "log")
        else:
            self.log_signer = keystore.signer("log")
        self._note_key = _NoteKey(self.log_signer)
        self.log_verifier = NoteVerifier.from_public_key(store.origin, self._note_key.public_key())
        self.memory = CheckpointMemory(home_of(keystore))
        self._settle = settle
        self._consistent_at: tuple[int, bytes] | None = None
        self._trust: Trust | None = None
        self._revocations: tuple[int, list[Revocation]] | None = None
        self._revocations_path = revocations_path(keystore)  # built once: verify's hot path
        self._store_file: tuple[Store, StoreFile | None] | None = None

    @property
    def origin(self) -> str:
        return self.store.origin

    @property
    def store_file(self) -> StoreFile | None:
        """The store as a :class:`~provmark.store.features.StoreFile` (one local file), or
        ``None``; asked once per store (a runtime protocol check costs tens of µs)."""
        if self._store_file is None or self._store_file[0] is not self.store:
            found = self.store if isinstance(self.store, StoreFile) else None
            self._store_file = (self.store, found)
        return self._store_file[1]

    def settle(self) -> None:
        """Wait until every record captured so far is stored and logged."""
        if self._settle is not None:
            self._settle()

    # ------------------------------------------------------------ checkpoints
    def note_signing_key(self) -> Ed25519PrivateKey:
        """The log key in the shape the signed-note code takes (an HSM/KMS signer is adapted)."""
        if isinstance(self.log_signer, LocalSigner) and isinstance(
            self.log_signer.private_key, Ed25519PrivateKey
        ):
            return self.log_signer.private_key
        return cast(Ed25519PrivateKey, self._note_key)

    def seal(self, size: int, root: bytes) -> str:
        """The signed checkpoint note of the tree of ``size`` leaves with ``root``."""
        return Checkpoint(self.origin, size, root).sign(self.origin, self.note_signing_key())

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        self.settle()
        return self.store.latest_checkpoint()

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self.store)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(old_size, new_size, self.store)

    def evidence(
        self, stored: StoredRecord, checkpoint: StoredCheckpoint | None = None
    ) -> Evidence:
        """The signed record with its inclusion proof in ``checkpoint`` (default: latest)."""
        checkpoint = checkpoint or self.store.latest_checkpoint()
        if checkpoint is None or checkpoint.size <= stored.index:
            raise VerificationError(
                "inclusion_proof", f"record {stored.record_id} is not logged yet"
            )
        return Evidence(
            payload=stored.payload,
            signature=stored.signature,
            index=stored.index,
            proof=inclusion_proof(stored.index, checkpoint.size, self.store),
            checkpoint=checkpoint.note,
            origin=self.origin,
        )

    def candidates(self, sha256: str, record_id: str | None = None) -> list[StoredRecord]:
        """The stored records to verify content against: the one named, else every record
        stating this output; a :class:`VerificationError` when there is none."""
        if record_id is not None:
            stored = self.store.get(record_id)
            if stored is None:
                raise VerificationError("record", f"no record {record_id!r} in this store")
            return [stored]
        found = self.store.by_output(sha256)
        if not found:
            raise VerificationError(
                "output_hash",
                f"no record for this content (sha256 {sha256}); "
                "it was not made here or was changed",
            )
        return found

    # ------------------------------------------------------------ rollback memory
    def checkpoint_problems(self) -> list[Problem]:
        """How the store differs from what this home has seen of its log: records lost
        (``rollback``), a different history (``fork``), another log in its file
        (``replaced``). See :mod:`provmark.log.memory`."""
        return self.memory.check(self.store, self.log_verifier)

    def remember_checkpoint(self, every: float = 0.0) -> None:
        """Remember the store's latest checkpoint in this home (when consistent), at most
        once per ``every`` seconds (the writer calls this after each batch)."""
        self.memory.remember(self.store, self.log_verifier, every=every)

    def require_consistent(self, checkpoint: StoredCheckpoint | None) -> None:
        """:class:`VerificationError` (``rollback``/``fork``/``replaced``) when the store lost
        records this home saw confirmed: no verify answer is given from such a log."""
        key = (checkpoint.size, checkpoint.root) if checkpoint is not None else (0, b"")
        if key == self._consistent_at:
            return
        problems = self.checkpoint_problems()
        if problems:
            raise VerificationError(problems[0].kind, problems[0].detail)
        self._consistent_at = key

    # ------------------------------------------------------------ keys
    def public_keys(self) -> list[PublicKey]:
        """Every record key this log knows: the store's and the key store's."""
        seen = {k.key_id: k for k in self.store.public_keys()}
        seen.update({k.key_id: k for k in self.keystore.public_keys()})
        return list(seen.values())

    def keys_changed(self) -> None:
        """Forget the cached :class:`Trust` (after a key rotation)."""
        self._trust = None

    def trust(self, trusted_checkpoint: tuple[int, bytes] | None = None) -> Trust:
        """This store's keys and log key; reused (with its caches) until keys rotate."""
        if trusted_checkpoint is not None:
            return Trust(self.public_keys(), self.log_verifier, self.origin, trusted_checkpoint)
        if self._trust is None:
            self._trust = Trust(self.public_keys(), self.log_verifier, self.origin)
        return self._trust

    def revocations(self) -> list[Revocation]:
        """The revocation list beside the key set, re-read only when the file changes."""
        path = self._revocations_path
        try:
            stamp = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return []
        if self._revocations is None or self._revocations[0] != stamp:
            self._revocations = (stamp, list(RevocationList(path)))
        return list(self._revocations[1])

    def signed_revocations(self) -> str:
        """The revocation list as a note signed by the log key (keys export, bundles)."""
        return sign_revocations(self.revocations(), self.origin, self.note_signing_key())

    def __repr__(self) -> str:
        return f"Log({self.store!r})"
