"""Storage backends behind the :class:`Store` protocol."""

from .base import Entry, Page, Query, Store, StoredCheckpoint, StoredRecord
from .sqlite import SQLiteStore

__all__ = ["Entry", "Page", "Query", "SQLiteStore", "Store", "StoredCheckpoint", "StoredRecord"]
