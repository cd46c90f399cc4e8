"""Removing record rows from the hot table and putting them back.

The :class:`~provmark.store.base.Store` protocol has no way to remove or re-insert
a record row (the log is append-only by design); a store that can is a
:class:`~provmark.store.features.HotRows` (both SQL stores are). Only the rows of
``records`` (with their tags and outputs) move: the Merkle tree's nodes and the
checkpoints are never changed, so every leaf stays in the log and proofs over
archived records keep working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..store.base import StoredRecord
from ..store.features import HotRows

if TYPE_CHECKING:
    from ..client import Provmark


class HotTable:
    """The hot record rows of one store."""

    def __init__(self, store: HotRows) -> None:
        self.store = store

    def close(self) -> None:
        """Nothing of its own: the store owns the connections."""

    def __enter__(self) -> HotTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def remove(self, records: Sequence[StoredRecord]) -> int:
        """Delete these rows (matched by index, id and exact bytes) in one transaction."""
        return self.store.remove_rows(records)

    def insert(self, records: Sequence[StoredRecord]) -> int:
        """Put rows back at their log index; rows already there are left alone."""
        return self.store.restore_rows(records)


def hot_table(pm: Provmark) -> HotTable:
    """The hot table of ``pm``'s store, or a clear error where the backend has none."""
    if isinstance(pm.store, HotRows):
        return HotTable(pm.store)
    raise ConfigError(
        f"{pm.store!r}: removing archived rows from the hot table (and restoring them) needs "
        "the SQLite or PostgreSQL store",
        field="keep_hot",
        hint="keep_hot writes and verifies an archive without removing rows",
    )


def supports_hot_removal(pm: Provmark) -> bool:
    return isinstance(pm.store, HotRows)
