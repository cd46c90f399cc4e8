"""Verification that does not rest on one server: witnesses, timestamps, revocations.

:class:`TrustPolicy` is what a verifier requires beyond the log operator's own
signatures; :meth:`TrustPolicy.policies` turns it into the policies of a
:class:`~provmark.verification.Verifier` (every base check still runs):

* ``witness_cosignatures``: the record is proven against a checkpoint that at least
  ``min_witnesses`` of the pinned witnesses cosigned (C2SP tlog-cosignature). A
  split view (a fork shown to some) cannot gather those: each witness only cosigns
  trees consistent with what it cosigned before.
* ``timestamp``: a checkpoint covering the record carries a valid RFC 3161 token by
  a pinned TSA.
* ``key_revoked``: a record signed by a revoked key passes only under the rule of
  :mod:`provmark.crypto.revocation`, with the earliest witnessed or time-stamped
  checkpoint that includes it as evidence.

The evidence of when a record was logged comes from a :class:`StoreHistory` (the
log's archive of cosigned and time-stamped checkpoints) or a :class:`NoteHistory`
(the cosignatures on an offline bundle's checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..crypto.revocation import Revocation, epoch_to_rfc3339
from ..errors import ConfigError, VerificationError
from ..log.merkle import inclusion_proof, verify_inclusion
from ..log.note import Checkpoint
from ..store.base import StoredCheckpoint
from ..verification.policies import (
    RevocationPolicy,
    TimestampPolicy,
    WitnessQuorum,
    describe_cosignatures,
)
from ..verification.verifier import Policy, Subject
from .archive import TrustArchive
from .cosignature import CHECK as WITNESS_CHECK
from .cosignature import Cosignature, CosignerKey, open_cosignatures, require_cosignatures

if TYPE_CHECKING:
    from ..store.base import Store
    from ..timestamp import TsaTrust

__all__ = ["NoteHistory", "StoreHistory", "TrustPolicy"]

_MAX_EVIDENCE_CHECKPOINTS = 2000


def _quorum_time(cosigs: Sequence[Cosignature], k: int) -> int | None:
    """When the k-th witness had cosigned (k >= 1), or None with fewer than k."""
    times = sorted(c.timestamp for c in cosigs)
    return times[k - 1] if len(times) >= k else None


@dataclass(frozen=True)
class TrustPolicy:
    """What a verifier requires beyond the log operator's own signatures."""

    witnesses: tuple[CosignerKey, ...] = ()
    min_witnesses: int = 0
    tsa: TsaTrust | None = None
    revocations: Sequence[Revocation] | None = None
    revocation_source: str = "revocation list"

    def __post_init__(self) -> None:
        if self.min_witnesses < 0:
            raise ConfigError(f"must be at least 0, not {self.min_witnesses}", field="min")
        if self.min_witnesses > len(self.witnesses):
            raise ConfigError(
                f"{self.min_witnesses} needs at least that many witness keys "
                f"(witnesses lists {len(self.witnesses)})",
                field="min",
            )

    @property
    def evidence_quorum(self) -> int:
        """Cosignatures that make a checkpoint 'witnessed' as revocation evidence."""
        return max(1, self.min_witnesses)

    @property
    def needs_history(self) -> bool:
        return bool(self.witnesses or self.tsa is not None or self.revocations)

    def with_revocations(self, more: Sequence[Revocation], source: str) -> TrustPolicy:
        """This policy honouring ``more`` revocations too (a revocation list is only ever
        added to: the earliest compromise time of a key wins)."""
        if not more:
            return self
        mine = list(self.revocations or ())
        where = source if not mine else f"{self.revocation_source} and {source}"
        return TrustPolicy(self.witnesses, self.min_witnesses, self.tsa, [*mine, *more], where)

    def policies(self) -> list[Policy]:
        """The verifier's policies: witness quorum, RFC 3161 time, revocation."""
        out: list[Policy] = []
        if self.min_witnesses > 0:
            out.append(WitnessQuorum(self.witnesses, self.min_witnesses))
        if self.tsa is not None:
            out.append(TimestampPolicy(self.tsa))
        if self.revocations:
            out.append(RevocationPolicy(tuple(self.revocations), self.revocation_source))
        return out

    # ------------------------------------------------------------ witnesses
    def witnessed_checkpoint(
        self, archive: TrustArchive, index: int
    ) -> tuple[StoredCheckpoint, list[Cosignature]]:
        """The newest archived checkpoint covering ``index`` with a quorum of cosignatures."""
        last: VerificationError | None = None
        candidates = archive.checkpoints(min_size=index + 1)
        for archived in candidates:
            try:
                cosigs = require_cosignatures(archived.note, self.witnesses, self.min_witnesses)
            except VerificationError as exc:
                last = last or exc
                continue
            body = archived.note.split("\n\n", 1)[0] + "\n"
            cp = Checkpoint.parse(body)
            return StoredCheckpoint(cp.size, cp.root_hash, archived.note, ""), cosigs
        why = f" (newest: {last.detail})" if last else ""
        raise VerificationError(
            WITNESS_CHECK,
            f"no checkpoint that includes leaf {index} is cosigned by {self.min_witnesses} of "
            f"the {len(self.witnesses)} listed witnesses; {len(candidates)} such checkpoints "
            f"in {archive.path.name}{why}",
        )


@dataclass
class StoreHistory:
    """When a stored record was already logged: the archive's cosigned and time-stamped
    checkpoints that include it (each checked against the log key and the tree)."""

    store: Store
    archive: TrustArchive
    policy: TrustPolicy

    def _included(self, subject: Subject, note: str) -> Checkpoint:
        ev = subject.evidence
        cp = subject.trust.checkpoint(note)
        proof = inclusion_proof(ev.index, cp.size, self.store)
        verify_inclusion(subject.leaf_hash, ev.index, cp.size, proof, cp.root_hash)
        return cp

    def witnessed_by(self, subject: Subject) -> tuple[str, str] | None:
        policy = self.policy
        if not policy.witnesses:
            return None
        k = policy.evidence_quorum
        index = subject.evidence.index
        checkpoints = self.archive.checkpoints(min_size=index + 1, newest_first=False)
        for archived in checkpoints[:_MAX_EVIDENCE_CHECKPOINTS]:
            try:
                _, cosigs = open_cosignatures(archived.note, policy.witnesses)
                at = _quorum_time(cosigs, k)
                if at is None:
                    continue
                cp = self._included(subject, archived.note)
            except VerificationError:
                continue
            how = (
                f"checkpoint of size {cp.size} cosigned by {k} witness(es) "
                f"({describe_cosignatures(cosigs)})"
            )
            return epoch_to_rfc3339(at + 1), how  # whole seconds: signed before at + 1
        return None

    def stamped_by(self, subject: Subject) -> tuple[str, str] | None:
        tsa = self.policy.tsa
        if tsa is None:
            return None
        from ..timestamp import verify_timestamp  # the timestamp module imports this package

        best: tuple[str, str] | None = None
        index = subject.evidence.index
        for stamp in self.archive.timestamps(min_size=index + 1)[:_MAX_EVIDENCE_CHECKPOINTS]:
            try:
                info = verify_timestamp(stamp.response, stamp.body.encode(), tsa)
                stored = self.store.checkpoint(stamp.size)
                note = stored.note if stored else None
                if note is None or note.split("\n\n", 1)[0] + "\n" != stamp.body:
                    continue  # a token over a body this log never signed
                cp = self._included(subject, note)
            except VerificationError:
                continue
            how = f"checkpoint of size {cp.size} time-stamped by {info.tsa} at {info.gen_time}"
            if best is None or info.latest < best[0]:
                best = (info.latest, how)
        return best

    def existed_by(self, subject: Subject) -> tuple[str, str] | None:
        found = [e for e in (self.witnessed_by(subject), self.stamped_by(subject)) if e]
        return min(found) if found else None


@dataclass
class NoteHistory:
    """An offline bundle's outside evidence: cosignatures on its checkpoint, and the
    (time, how) of its RFC 3161 tokens checked against a pinned TSA, earliest first."""

    policy: TrustPolicy
    stamps: Sequence[tuple[str, str]] = ()

    def existed_by(self, subject: Subject) -> tuple[str, str] | None:
        found = [e for e in (self._witnessed(subject), self.stamped_by(subject)) if e]
        return min(found) if found else None

    def _witnessed(self, subject: Subject) -> tuple[str, str] | None:
        if not self.policy.witnesses:
            return None
        try:
            _, cosigs = open_cosignatures(subject.evidence.checkpoint, self.policy.witnesses)
        except VerificationError:
            return None
        at = _quorum_time(cosigs, self.policy.evidence_quorum)
        if at is None:
            return None
        how = (
            f"checkpoint of size {subject.checkpoint.size} cosigned "
            f"({describe_cosignatures(cosigs)})"
        )
        return epoch_to_rfc3339(at + 1), how

    def stamped_by(self, subject: Subject) -> tuple[str, str] | None:
        return self.stamps[0] if self.stamps else None
