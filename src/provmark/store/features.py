"""What features need from a store beyond the append-only log: capability protocols.

A feature (the privacy vault, fingerprints, dead letters, governance) never reaches
into a store's internals (its file, its pool, its class); it asks for a capability
with ``isinstance(store, FeatureTables)`` and the like, and both SQL stores offer
them:

* :class:`FeatureTables`: one connection factory (``connect()``, ``transaction()``:
  DB-API connections on the store's database), its :class:`Dialect`, and
  ``ensure_feature(name, steps)``: the store creates and upgrades a feature's tables,
  in order, and records each step applied in ``feature_migrations``.
* :class:`HotRows`: remove the rows of archived records and put them back (governance).
* :class:`StoreFile`: a store kept in one file on this machine (SQLite), so features
  may keep files beside it (journal, disclosure ledger, trust archive, backups).
* ``DeadLetterStore`` (in :mod:`.deadletters`).

Feature SQL is written once with ``?`` placeholders (``dialect.sql()`` turns them into
the driver's) and DDL with ``{blob}``, ``{serial}``, ``{autoincrement}``,
``{without_rowid}`` substitutions (``dialect.ddl()``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import SchemaVersionError, StoreError
from .base import StoredRecord


@dataclass(frozen=True)
class Dialect:
    """How one SQL database spells what differs."""

    name: str  # "sqlite" | "postgresql"
    mark: str  # the driver's placeholder: "?" | "%s"
    blob: str  # BLOB | BYTEA
    serial: str  # an integer key the database numbers (never reused with autoincrement)
    autoincrement: str  # " AUTOINCREMENT" on SQLite (ids never reused), "" elsewhere
    without_rowid: str  # " WITHOUT ROWID" on SQLite, "" elsewhere
    table_exists: str  # a query with one row when the table named by its argument exists
    uuid_cast: str = ""  # after a record id placeholder ("::uuid" on PostgreSQL)
    time_cast: str = ""  # after a time placeholder ("::timestamptz" on PostgreSQL)

    def sql(self, text: str) -> str:
        """``text`` written with ``?`` placeholders, in this driver's."""
        return text if self.mark == "?" else text.replace("?", self.mark)

    def ddl(self, text: str) -> str:
        """``text`` with ``{blob}``, ``{serial}``, ``{autoincrement}``, ``{without_rowid}``."""
        return text.format(
            blob=self.blob,
            serial=self.serial,
            autoincrement=self.autoincrement,
            without_rowid=self.without_rowid,
        )


SQLITE = Dialect(
    name="sqlite",
    mark="?",
    blob="BLOB",
    serial="INTEGER PRIMARY KEY",
    autoincrement=" AUTOINCREMENT",
    without_rowid=" WITHOUT ROWID",
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
)
POSTGRESQL = Dialect(
    name="postgresql",
    mark="%s",
    blob="BYTEA",
    serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    autoincrement="",
    without_rowid="",
    table_exists="SELECT 1 WHERE to_regclass(?) IS NOT NULL",
    uuid_cast="::uuid",
    time_cast="::timestamptz",
)


@dataclass(frozen=True)
class Step:
    """One version of a feature's schema: DDL (``;``-separated statements, with the
    :meth:`Dialect.ddl` substitutions; a dict gives one text per dialect name) or a
    function ``(connection, dialect) -> None`` for what DDL alone cannot say. A step
    runs inside the store's transaction and must be safe on tables an earlier provmark
    made without bookkeeping (``IF NOT EXISTS``; check before altering)."""

    name: str
    sql: str | dict[str, str] | Callable[[Any, Dialect], None]

    def run(self, conn: Any, dialect: Dialect) -> None:
        if callable(self.sql):
            self.sql(conn, dialect)
            return
        text = self.sql[dialect.name] if isinstance(self.sql, dict) else self.sql
        for stmt in dialect.ddl(text).split(";"):
            if stmt.strip():
                conn.execute(stmt)


BOOKKEEPING = """CREATE TABLE IF NOT EXISTS feature_migrations (
    feature TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
    applied_at TEXT NOT NULL, PRIMARY KEY (feature, version))"""


def applied(conn: Any, dialect: Dialect, feature: str) -> int:
    """The newest version of ``feature`` recorded (0: none); the table must exist."""
    row = conn.execute(
        dialect.sql("SELECT max(version) FROM feature_migrations WHERE feature = ?"), (feature,)
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate_feature(
    conn: Any, dialect: Dialect, feature: str, steps: Sequence[Step], now: str, where: str
) -> int:
    """Apply the steps of ``feature`` not yet recorded, in order, on ``conn`` (inside the
    caller's transaction, bookkeeping table made); return the version reached."""
    version = applied(conn, dialect, feature)
    check_version(feature, version, steps, where)
    for number, step in enumerate(steps[version:], start=version + 1):
        step.run(conn, dialect)
        conn.execute(
            dialect.sql(
                "INSERT INTO feature_migrations (feature, version, name, applied_at)"
                " VALUES (?, ?, ?, ?)"
            ),
            (feature, number, step.name, now),
        )
        version = number
    return version


def check_version(feature: str, version: int, steps: Sequence[Step], where: str) -> None:
    if version > len(steps):
        raise SchemaVersionError(
            f"{where}: the {feature} tables were written by a newer provmark (v{version}, "
            f"this one knows up to v{len(steps)}); upgrade provmark"
        )


def feature_name(feature: str) -> str:
    if not feature.replace("_", "").isalnum():
        raise StoreError(f"feature names are letters, digits and '_', not {feature!r}")
    return feature


@runtime_checkable
class FeatureTables(Protocol):
    """A store that keeps features' tables in its own database."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def where(self) -> str:
        """The database, for messages: a file's path, or a URL without its password."""
        ...

    def connect(self) -> AbstractContextManager[Any]:
        """A DB-API connection on the store's database, in autocommit mode (SQLite: a
        connection of its own on the file, closed on exit; PostgreSQL: one of the pool)."""
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """A connection inside one write transaction, committed on a normal exit."""
        ...

    def ensure_feature(self, feature: str, steps: Sequence[Step]) -> int:
        """Create or upgrade ``feature``'s tables to ``len(steps)``; return the version.
        A store opened only to read (``create=False``, read-only media) never creates:
        it returns the version already there (0: no tables)."""
        ...


@runtime_checkable
class HotRows(Protocol):
    """A store whose record rows can leave the hot tables and come back (archival).

    Only the rows of ``records`` (with their tags and outputs) move; the Merkle tree's
    nodes and the checkpoints never change, so every leaf stays in the log."""

    def remove_rows(self, records: Sequence[StoredRecord]) -> int:
        """Delete these rows (matched by index, id and exact bytes) in one transaction."""
        ...

    def restore_rows(self, records: Sequence[StoredRecord]) -> int:
        """Put rows back at their log index; rows already there are left alone."""
        ...


@runtime_checkable
class StoreFile(Protocol):
    """A store kept in one file on this machine (SQLite)."""

    @property
    def path(self) -> Path: ...

    def beside(self, kind: str) -> Path:
        """A file of ``kind`` next to the store (``provmark.db`` -> ``provmark.<kind>.db``)."""
        ...

    def backup_to(self, target: Path) -> dict[str, Any]:
        """A consistent, self-contained copy of the store at ``target`` while writers
        keep going; returns the copy's origin, records, tree_size and checkpoint note."""
        ...


def beside(path: Path, kind: str) -> Path:
    """``provmark.db`` -> ``provmark.<kind>.db``; a name without suffix gets ``.<kind>.db``."""
    if path.suffix:
        return path.with_name(f"{path.stem}.{kind}{path.suffix}")
    return path.with_name(f"{path.name}.{kind}.db")
