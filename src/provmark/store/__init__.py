"""Storage backends behind the :class:`Store` protocol, and the capabilities features
use beyond it (:mod:`.features`, :mod:`.deadletters`)."""

from .base import Entry, Page, Query, Store, StoredCheckpoint, StoredRecord
from .deadletters import DeadLetterStore
from .features import Dialect, FeatureTables, HotRows, Step, StoreFile
from .sqlite import SQLiteStore

__all__ = [
    "DeadLetterStore",
    "Dialect",
    "Entry",
    "FeatureTables",
    "HotRows",
    "Page",
    "Query",
    "SQLiteStore",
    "Step",
    "Store",
    "StoreFile",
    "StoredCheckpoint",
    "StoredRecord",
]
