"""Mark an output with a signed C2PA manifest and note it for the disclosure report.

``provmark mark`` and the demo call :func:`mark_output`; each marking, and each one that
failed, is noted in the mark ledger that ``disclose --report`` counts.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ProvmarkError
from ..store.base import StoredRecord
from .disclose import pm_provider
from .ledger import MarkLedger

if TYPE_CHECKING:
    from ..client import Provmark
    from ..export.c2pa import Marked

__all__ = ["mark_output"]


def mark_output(
    pm: Provmark,
    asset: str | os.PathLike[str],
    out: str | os.PathLike[str],
    stored: StoredRecord,
    chain: str | bytes | os.PathLike[str],
    key: str | bytes | os.PathLike[str],
    *,
    provider: str | None = None,
    sidecar: bool | None = None,
    check_output: bool = True,
) -> Marked:
    """Sign a manifest for ``stored`` into a copy of ``asset`` at ``out`` (embedded where
    the format allows, else a ``.c2pa`` sidecar), noting the outcome in the ledger."""
    from ..export.c2pa import mark

    with MarkLedger.for_provmark(pm) as ledger:
        try:
            done = mark(
                asset,
                out,
                stored,
                chain,
                key,
                provider=provider or stored.record().model.provider or pm_provider(pm),
                sidecar=sidecar,
                check_output=check_output,
            )
        except ProvmarkError as exc:
            ledger.note(stored.record_id, "failed", path=str(out), detail=str(exc))
            raise
        ledger.note(
            stored.record_id,
            "sidecar" if done.sidecar else "embedded",
            media_type=done.media_type,
            path=str(done.path),
        )
    return done
