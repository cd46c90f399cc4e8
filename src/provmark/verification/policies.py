"""Policies a :class:`~provmark.verification.Verifier` applies after the base checks.

* :class:`RevocationPolicy` (``key_revoked``): the revocation rule of
  :mod:`provmark.crypto.revocation`, with the outside evidence the surface has (the
  log's archive of witnessed and time-stamped checkpoints, or the cosignatures on a
  bundle's checkpoint).
* :class:`WitnessQuorum` (``witness_cosignatures``): the checkpoint proven against
  carries cosignatures by at least ``k`` of the pinned witnesses.
* :class:`TimestampPolicy` (``timestamp``): a checkpoint including the record has a
  valid RFC 3161 token by a pinned TSA.

Each policy takes narrow inputs (keys, a revocation list, a TSA root): never a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..crypto.revocation import CHECK as REVOKED_CHECK
from ..crypto.revocation import Revocation, judge
from ..errors import ConfigError, VerificationError
from .verifier import Subject

if TYPE_CHECKING:
    from ..witness.cosignature import Cosignature, CosignerKey

__all__ = ["RevocationPolicy", "TimestampPolicy", "WitnessQuorum", "describe_cosignatures"]


def describe_cosignatures(cosigs: Sequence[Cosignature]) -> str:
    return ", ".join(f"{c.name} at {c.iso_time()}" for c in sorted(cosigs, key=lambda c: c.name))


@dataclass(frozen=True)
class RevocationPolicy:
    """Records by a revoked key pass only when logged, provably, before the compromise."""

    revocations: Sequence[Revocation]
    source: str = "revocation list"
    name: str = REVOKED_CHECK

    def get(self, key_id: str) -> Revocation | None:
        found = [r for r in self.revocations if r.key_id == key_id]
        return min(found, key=lambda r: r.since) if found else None  # the earliest wins

    def __call__(self, subject: Subject) -> str | None:
        rev = self.get(subject.key_id)
        if rev is None:
            count = len(self.revocations)
            return f"key {subject.key_id} is not in the {self.source} ({count} revocations)"
        history = subject.history
        existed = history.existed_by(subject) if history is not None else None
        return f"{judge(rev, subject.generated_at, existed)} (per the {self.source})"


@dataclass(frozen=True)
class WitnessQuorum:
    """At least ``k`` of ``witnesses`` cosigned the checkpoint the record is proven against."""

    witnesses: tuple[CosignerKey, ...]
    k: int
    name: str = "witness_cosignatures"

    def __post_init__(self) -> None:
        if not 0 <= self.k <= len(self.witnesses):
            raise ConfigError(
                f"{self.k} needs at least that many witness keys "
                f"(witnesses lists {len(self.witnesses)})",
                field="min",
            )

    def __call__(self, subject: Subject) -> str | None:
        if self.k == 0:
            return None
        from ..witness.cosignature import require_cosignatures

        cosigs = require_cosignatures(subject.evidence.checkpoint, self.witnesses, self.k)
        return (
            f"{len(cosigs)} of {len(self.witnesses)} witnesses (need {self.k}) cosigned the "
            f"checkpoint of size {subject.checkpoint.size}: {describe_cosignatures(cosigs)}"
        )


@dataclass(frozen=True)
class TimestampPolicy:
    """An RFC 3161 token by the pinned TSA on a checkpoint that includes the record."""

    tsa: object  # timestamp.TsaTrust: only the history that checks tokens reads it
    name: str = "timestamp"

    def __call__(self, subject: Subject) -> str | None:
        history = subject.history
        when = history.stamped_by(subject) if history is not None else None
        if when is None:
            raise VerificationError(
                "timestamp",
                f"no checkpoint that includes leaf {subject.evidence.index} has a valid "
                "timestamp by the pinned TSA (run `provmark timestamp add`; bundles carry none)",
            )
        return f"leaf {subject.evidence.index} existed by {when[0]}: {when[1]}"
