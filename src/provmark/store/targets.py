"""Where a store is: ``--db`` / ``PROVMARK_DB`` / a path, and opening it by its kind."""

from __future__ import annotations

import os

from ..errors import ConfigError
from .base import Store

__all__ = ["open_store", "resolve_target"]


def resolve_target(target: str | os.PathLike[str] | None) -> str:
    """``--db`` / ``PROVMARK_DB`` / ``PROVMARK_DATABASE_URL`` / ``./provmark.db``."""
    if target is not None:
        return os.fspath(target)
    return os.environ.get("PROVMARK_DB") or os.environ.get("PROVMARK_DATABASE_URL") or "provmark.db"


def open_store(target: str | os.PathLike[str], *, create: bool = True) -> Store:
    """A ``postgresql://`` URL as a :class:`~provmark.store.postgres.PostgresStore`, anything
    else as a SQLite file; ``create=False`` opens only a store that exists."""
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigError(f"PostgreSQL store unavailable: {exc}") from None
        return PostgresStore(text, create=create)  # type: ignore[no-any-return,unused-ignore]
    from .sqlite import SQLiteStore

    return SQLiteStore(text, create=create)
