"""Offline bundles proven against a checkpoint the witnesses cosigned."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..bundle import make_bundle
from ..errors import ConfigError
from ..log.merkle import inclusion_proof
from .archive import TrustArchive
from .cosignature import CosignerKey
from .policy import TrustPolicy

if TYPE_CHECKING:
    from ..log.service import Log

__all__ = ["witnessed_bundle"]


def witnessed_bundle(
    log: Log,
    record_id: str,
    witnesses: Sequence[CosignerKey],
    min_witnesses: int,
    archive: TrustArchive | None = None,
) -> dict[str, Any]:
    """An offline bundle proven against a checkpoint carrying the witnesses' cosignatures."""
    log.settle()
    stored = log.store.get(record_id)
    if stored is None:
        raise ConfigError(f"no record {record_id!r}")
    policy = TrustPolicy(tuple(witnesses), min_witnesses)
    own = archive is None
    arch = archive or TrustArchive.existing(log)
    try:
        checkpoint, _ = policy.witnessed_checkpoint(arch, stored.index)
    finally:
        if own:
            arch.close()
    bundle = make_bundle(log, stored)
    proof = inclusion_proof(stored.index, checkpoint.size, log.store)
    bundle["log"].update(
        checkpoint=checkpoint.note,
        tree_size=checkpoint.size,
        proof=[base64.b64encode(p).decode() for p in proof],
    )
    return bundle
