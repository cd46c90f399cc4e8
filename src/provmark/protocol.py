"""What every provmark client offers, embedded or remote: :class:`ProvenanceClient`.

``provmark.open("provmark.db")`` (a :class:`~provmark.Provmark` over a local store) and
``provmark.open("https://provmark.example")`` (a ``RemoteProvmark`` over the HTTP API)
both satisfy it, with the same types in and out, so code written against it runs on
either::

    def summarize_and_prove(pm: provmark.ProvenanceClient, text: str) -> str:
        with pm.record(model=provmark.Model("acme/sum"), input=text) as rec:
            rec.set_output(summary := text[:100])
        pm.verify(summary)
        return summary

Anything beyond it (proofs, keys, erasure, role views) is the embedded client's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, Self, Unpack, runtime_checkable

from .capture.core import Recording
from .crypto.keys import PublicKey
from .record import Record
from .store.base import Filters, Page, Query, StoredCheckpoint
from .verify import Verified

__all__ = ["ProvenanceClient"]


@runtime_checkable
class ProvenanceClient(Protocol):
    """Capture, look up and verify provenance records, wherever they are stored."""

    def capture(self, fn: Any = None, **spec: Any) -> Any:
        """Decorator: ``@pm.capture(model=...)`` records every call."""

    def record(
        self, *, input: Any = None, params: Mapping[str, Any] | None = None, **spec: Any
    ) -> Recording:
        """Context manager recording one generation: ``rec.set_output(x)`` inside."""
        ...

    def acting_for(self, user_id: str) -> AbstractContextManager[None]:
        """Records captured inside name ``user_id`` as the actor."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until every record captured so far is stored (or journaled)."""

    def close(self) -> None:
        """Flush and release the store or connection."""

    def get(self, record_id: str) -> Record:
        """One record by id or slug (``NotFoundError`` if none)."""
        ...

    def find(self, query: Query | None = None, **filters: Unpack[Filters]) -> Page[Record]:
        """Records matching every filter, newest first, ``limit`` at a time."""
        ...

    def verify(self, content: Any, *, record_id: str | None = None) -> Verified:
        """Was ``content`` made here, by what, and is it intact? (``VerificationError``)"""
        ...

    def bundle(self, record_id: str) -> dict[str, Any]:
        """The offline bundle of a record (verifies with no server and no database)."""
        ...

    def public_keys(self) -> list[PublicKey]:
        """The record-signing keys with their validity windows."""
        ...

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The latest signed checkpoint of the log (``None`` while it is empty)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counts and settings worth a glance (``backend`` names the kind)."""
        ...
