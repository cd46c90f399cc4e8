"""Verification that does not rest on one server: witnesses, timestamps, revocations.

:class:`TrustPolicy` wraps :func:`provmark.verify.verify_evidence` (every usual
check still runs) and adds:

* ``witness_cosignatures``: the record is proven against a checkpoint that at least
  ``min_witnesses`` of the pinned witnesses cosigned (C2SP tlog-cosignature). A
  split view (a fork shown to some) cannot gather those: each witness only cosigns
  trees consistent with what it cosigned before.
* ``timestamp``: a checkpoint covering the record carries a valid RFC 3161 token by
  a pinned TSA.
* ``revocation``: a record signed by a revoked key passes only under the rule of
  :mod:`provmark.crypto.revocation`, with the earliest witnessed or time-stamped
  checkpoint that includes it as evidence.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..capture.hashing import digest_output
from ..crypto.revocation import RevocationList, epoch_to_rfc3339, judge
from ..errors import ConfigError, VerificationError
from ..log.merkle import consistency_proof, inclusion_proof, verify_consistency, verify_inclusion
from ..log.note import Checkpoint
from ..store.base import StoredCheckpoint, StoredRecord
from ..verify import Check, Trust, Verified, leaf_hash_of, verify_evidence
from .archive import TrustArchive
from .cosignature import CHECK as WITNESS_CHECK
from .cosignature import Cosignature, CosignerKey, open_cosignatures, require_cosignatures

if TYPE_CHECKING:
    from ..client import Provmark
    from ..timestamp import TsaTrust

__all__ = ["TrustPolicy", "witnessed_bundle"]

_MAX_EVIDENCE_CHECKPOINTS = 2000


def _quorum_time(cosigs: Sequence[Cosignature], k: int) -> int | None:
    """When the k-th witness had cosigned (k >= 1), or None with fewer than k."""
    times = sorted(c.timestamp for c in cosigs)
    return times[k - 1] if len(times) >= k else None


def _describe(cosigs: Sequence[Cosignature]) -> str:
    return ", ".join(f"{c.name} at {c.iso_time()}" for c in sorted(cosigs, key=lambda c: c.name))


@dataclass(frozen=True)
class TrustPolicy:
    """What a verifier requires beyond the log operator's own signatures."""

    witnesses: tuple[CosignerKey, ...] = ()
    min_witnesses: int = 0
    tsa: TsaTrust | None = None
    revocations: RevocationList | None = None
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.min_witnesses < 0:
            raise ConfigError(f"--min must be at least 0, not {self.min_witnesses}")
        if self.min_witnesses > len(self.witnesses):
            raise ConfigError(
                f"--min {self.min_witnesses} needs at least that many witness keys "
                f"(--witnesses lists {len(self.witnesses)})"
            )

    @property
    def evidence_quorum(self) -> int:
        """Cosignatures that make a checkpoint 'witnessed' as revocation evidence."""
        return max(1, self.min_witnesses)

    # ------------------------------------------------------------ against a store
    def verify(
        self,
        pm: Provmark,
        content: Any,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
        archive: TrustArchive | None = None,
    ) -> Verified:
        """Like ``pm.verify`` plus this policy's checks; raise the first failure."""
        if not hasattr(pm, "store") or not hasattr(pm.store, "get_nodes"):
            raise ConfigError("witness, timestamp and revocation checks need a local store")
        pm.flush()
        sha = digest_output(content, pm.encoders).sha256
        candidates = pm.candidates(sha, record_id)
        own = archive is None
        arch = archive or TrustArchive.existing(pm)
        try:
            first: VerificationError | None = None
            for rec in candidates:
                try:
                    return self._verify_stored(pm, arch, rec, sha, trusted_checkpoint)
                except VerificationError as exc:
                    first = first or exc
            assert first is not None
            raise first
        finally:
            if own:
                arch.close()

    def _verify_stored(
        self,
        pm: Provmark,
        archive: TrustArchive,
        rec: StoredRecord,
        sha: str,
        trusted_checkpoint: tuple[int, bytes] | None,
    ) -> Verified:
        cosigs: list[Cosignature] = []
        if self.min_witnesses > 0:
            checkpoint, cosigs = self._witnessed_checkpoint(archive, rec.index)
        else:
            latest = pm.store.latest_checkpoint()
            if latest is None:
                raise VerificationError("inclusion_proof", "the log is empty")
            checkpoint = latest
        ev = pm.evidence(rec, checkpoint)
        later = trusted_checkpoint is not None and trusted_checkpoint[0] > checkpoint.size
        trust = pm.trust(None if later else trusted_checkpoint)
        proof = (
            consistency_proof(trusted_checkpoint[0], checkpoint.size, pm.store)
            if trusted_checkpoint and not later
            else None
        )
        verified = verify_evidence(ev, trust, content_sha256=sha, consistency_proof=proof)
        if later and trusted_checkpoint is not None:  # the witnessed tree must be its prefix
            size, root = trusted_checkpoint
            verify_consistency(
                checkpoint.size,
                size,
                checkpoint.root,
                root,
                consistency_proof(checkpoint.size, size, pm.store),
            )
            verified.checks.append(
                Check("consistency", True, f"tree of size {checkpoint.size} is a prefix of {size}")
            )
        if cosigs:
            verified.checks.append(
                Check(
                    WITNESS_CHECK,
                    True,
                    f"{len(cosigs)} of {len(self.witnesses)} witnesses (need {self.min_witnesses})"
                    f" cosigned the checkpoint of size {checkpoint.size}: {_describe(cosigs)}",
                )
            )
        if self.tsa is not None:
            when = self._stamped_by(pm, trust, archive, rec)
            if when is None:
                raise VerificationError(
                    "timestamp",
                    f"no checkpoint that includes leaf {rec.index} has a valid timestamp by the "
                    "pinned TSA (run `provmark timestamp add`)",
                )
            verified.checks.append(
                Check("timestamp", True, f"leaf {rec.index} existed by {when[0]}: {when[1]}")
            )
        self._check_revocation(verified, lambda: self._existed_by(pm, trust, archive, rec))
        return verified

    # ------------------------------------------------------------ witnesses
    def _witnessed_checkpoint(
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

    # ------------------------------------------------------------ existence evidence
    def _included(self, pm: Provmark, trust: Trust, rec: StoredRecord, note: str) -> Checkpoint:
        cp = trust.checkpoint(note)
        proof = inclusion_proof(rec.index, cp.size, pm.store)
        verify_inclusion(
            leaf_hash_of(rec.payload, rec.signature), rec.index, cp.size, proof, cp.root_hash
        )
        return cp

    def _witnessed_by(
        self, pm: Provmark, trust: Trust, archive: TrustArchive, rec: StoredRecord
    ) -> tuple[str, str] | None:
        if not self.witnesses:
            return None
        k = self.evidence_quorum
        checkpoints = archive.checkpoints(min_size=rec.index + 1, newest_first=False)
        for archived in checkpoints[:_MAX_EVIDENCE_CHECKPOINTS]:
            try:
                _, cosigs = open_cosignatures(archived.note, self.witnesses)
                at = _quorum_time(cosigs, k)
                if at is None:
                    continue
                cp = self._included(pm, trust, rec, archived.note)
            except VerificationError:
                continue
            how = f"checkpoint of size {cp.size} cosigned by {k} witness(es) ({_describe(cosigs)})"
            return epoch_to_rfc3339(at + 1), how  # whole seconds: signed before at + 1
        return None

    def _stamped_by(
        self, pm: Provmark, trust: Trust, archive: TrustArchive, rec: StoredRecord
    ) -> tuple[str, str] | None:
        if self.tsa is None:
            return None
        from ..timestamp import verify_timestamp  # the timestamp module imports this package

        best: tuple[str, str] | None = None
        for stamp in archive.timestamps(min_size=rec.index + 1)[:_MAX_EVIDENCE_CHECKPOINTS]:
            try:
                info = verify_timestamp(stamp.response, stamp.body.encode(), self.tsa)
                stored = pm.store.checkpoint(stamp.size)
                note = stored.note if stored else None
                if note is None or note.split("\n\n", 1)[0] + "\n" != stamp.body:
                    continue  # a token over a body this log never signed
                cp = self._included(pm, trust, rec, note)
            except VerificationError:
                continue
            how = f"checkpoint of size {cp.size} time-stamped by {info.tsa} at {info.gen_time}"
            if best is None or info.latest < best[0]:
                best = (info.latest, how)
        return best

    def _existed_by(
        self, pm: Provmark, trust: Trust, archive: TrustArchive, rec: StoredRecord
    ) -> tuple[str, str] | None:
        found = [
            e
            for e in (
                self._witnessed_by(pm, trust, archive, rec),
                self._stamped_by(pm, trust, archive, rec),
            )
            if e is not None
        ]
        return min(found) if found else None

    def _check_revocation(self, verified: Verified, existed_by: Any) -> None:
        if self.revocations is None:
            return
        rev = self.revocations.get(verified.signature.get("key_id", ""))
        if rev is None:
            return
        generated_at = json.loads(verified.payload).get("generated_at", "")
        detail = judge(rev, generated_at, existed_by())
        verified.checks.append(Check("revocation", True, detail))

    # ------------------------------------------------------------ offline bundles
    def check_bundle(self, bundle: dict[str, Any], verified: Verified) -> Verified:
        """Add the checks a bundle can support to an already verified bundle."""
        if self.tsa is not None:
            raise ConfigError("--tsa-cert needs the log's archive (a store), not a bundle")
        note = str(bundle.get("log", {}).get("checkpoint", ""))
        cosigs: list[Cosignature] = []
        if self.min_witnesses > 0:
            cosigs = require_cosignatures(note, self.witnesses, self.min_witnesses)
            verified.checks.append(
                Check(
                    WITNESS_CHECK,
                    True,
                    f"{len(cosigs)} of {len(self.witnesses)} witnesses (need "
                    f"{self.min_witnesses}) cosigned the checkpoint of size "
                    f"{verified.tree_size}: {_describe(cosigs)}",
                )
            )
        elif self.witnesses:
            _, cosigs = open_cosignatures(note, self.witnesses)

        def existed_by() -> tuple[str, str] | None:
            at = _quorum_time(cosigs, self.evidence_quorum)
            if at is None:
                return None
            how = f"checkpoint of size {verified.tree_size} cosigned ({_describe(cosigs)})"
            return epoch_to_rfc3339(at + 1), how

        self._check_revocation(verified, existed_by)
        return verified


def witnessed_bundle(
    pm: Provmark,
    record_id: str,
    witnesses: Sequence[CosignerKey],
    min_witnesses: int,
    archive: TrustArchive | None = None,
) -> dict[str, Any]:
    """An offline bundle proven against a checkpoint carrying the witnesses' cosignatures."""
    from ..bundle import make_bundle

    pm.flush()
    stored = pm.store.get(record_id)
    if stored is None:
        raise ConfigError(f"no record {record_id!r}")
    policy = TrustPolicy(tuple(witnesses), min_witnesses)
    own = archive is None
    arch = archive or TrustArchive.existing(pm)
    try:
        checkpoint, _ = policy._witnessed_checkpoint(arch, stored.index)
    finally:
        if own:
            arch.close()
    bundle = make_bundle(pm, stored)
    proof = inclusion_proof(stored.index, checkpoint.size, pm.store)
    bundle["log"].update(
        checkpoint=checkpoint.note,
        tree_size=checkpoint.size,
        proof=[base64.b64encode(p).decode() for p in proof],
    )
    return bundle
