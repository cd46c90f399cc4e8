"""Vaults: wrapped data keys, field ciphertexts and the access log, beside the store.

The vault's tables are feature tables of the record store
(:class:`~provmark.store.features.FeatureTables`): the store creates them, records
their schema version, and lends the connections.

* :class:`SQLiteVault` keeps them in the store's own SQLite file, on connections of
  their own (one per operation) with ``PRAGMA secure_delete=ON``.
* :class:`PostgresVault` keeps them in the store's PostgreSQL schema, on its pool.

The tables and the logic are in :mod:`provmark.privacy.sqlvault`.

Ordering: the writer stores a batch's ciphertexts (one transaction) *before* the
records that reference them (the next transaction), and with ``durable=True``
before the journal line. A crash can therefore leave a ciphertext without its
record (harmless: it is encrypted, and erasing the subject shreds it), never a
record whose ciphertext was not yet written.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..crypto.fieldenc import MasterKey
from ..errors import StoreError
from ..store.features import FeatureTables, Step
from ..store.sqlite import SQLiteTables
from .base import Vault
from .sqlvault import DDL, Cursor, SqlVault

__all__ = ["PostgresVault", "SQLiteVault", "SqlVault", "StoreVault", "vault_for"]

T = TypeVar("T")

STEPS = (Step("vault", ";".join(DDL)),)


class _Cursor:
    """The vault's three calls on a DB-API connection (``?`` parameters)."""

    def __init__(self, conn: Any, mark: str) -> None:
        self._conn = conn
        self._mark = mark

    def _sql(self, sql: str) -> str:
        return sql if self._mark == "?" else sql.replace("?", self._mark)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._conn.execute(self._sql(sql), args)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(self._sql(sql), args).fetchall())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur = self._conn.cursor()
        try:
            cur.executemany(self._sql(sql), rows)
        finally:
            cur.close()


class StoreVault(SqlVault):
    """The vault on a store's feature tables."""

    def __init__(self, tables: FeatureTables, master: MasterKey) -> None:
        super().__init__(master)
        self.tables = tables
        self._errors = _errors(tables)
        self._prepare()
        try:
            tables.ensure_feature("vault", STEPS)
        except self._errors as exc:
            raise StoreError(f"{self._name()}: cannot open the privacy vault ({exc})") from None

    def _name(self) -> str:
        return self.tables.where

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name()!r})"

    def _prepare(self) -> None:
        """What the database needs once, before the tables (nothing by default)."""

    def _setup(self, conn: Any) -> None:
        """Per connection (nothing by default)."""

    def _transaction(self, fn: Callable[[Cursor], T]) -> T:
        try:
            with self.tables.transaction() as conn:
                self._setup(conn)
                return fn(_Cursor(conn, self.tables.dialect.mark))
        except self._errors as exc:
            raise StoreError(f"{self._name()}: vault: {exc}".rstrip()) from None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self.tables.connect() as conn:
                self._setup(conn)
                return _Cursor(conn, self.tables.dialect.mark).query(sql, args)
        except self._errors as exc:
            raise StoreError(f"{self._name()}: vault: {exc}".rstrip()) from None


def _errors(tables: FeatureTables) -> type[Exception]:
    if tables.dialect.name == "postgresql":
        import psycopg

        return psycopg.Error
    return sqlite3.DatabaseError


class SQLiteVault(StoreVault):
    """Vault tables in an SQLite file (normally the store's), on connections of their own.

    Each operation opens a connection (``secure_delete=ON``: freed bytes are zeroed) and
    closes it, so the vault never holds the file open: closing the store still merges
    the WAL into the file, as with no vault at all. A connection costs ~0.1-0.2 ms, once
    per batch of records or per read. ``tables`` is the store, or the path of a file
    for the vault alone.
    """

    def __init__(self, tables: FeatureTables | str | Path, master: MasterKey) -> None:
        if isinstance(tables, str | Path):
            tables = SQLiteTables(tables)
        super().__init__(tables, master)

    def _prepare(self) -> None:
        try:
            with self.tables.connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._name()}: cannot open the privacy vault ({exc})") from None

    def _setup(self, conn: Any) -> None:
        conn.execute("PRAGMA secure_delete=ON")

    def _scrub(self) -> bool:
        """Copy the WAL into the file and truncate it, so old key bytes leave both."""
        deadline = time.monotonic() + 5.0
        with self.tables.connect() as db:
            while True:
                try:
                    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                except sqlite3.DatabaseError:
                    busy = 1
                if not busy:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)


class PostgresVault(StoreVault):
    """Vault tables in a PostgreSQL store's schema, on the store's pool."""

    def _lock_access_log(self, cur: Cursor) -> None:
        cur.execute("LOCK TABLE pm_access_log IN SHARE ROW EXCLUSIVE MODE")

    def _scrub(self) -> bool:
        """Rewrite the key table, so dead row versions holding old keys leave the heap."""
        try:
            with self.tables.connect() as conn:
                conn.execute("VACUUM FULL pm_subject_keys")
            return True
        except (self._errors, StoreError):
            return False


def vault_for(store: object, master: MasterKey) -> Vault | None:
    """The vault that goes with a store: in its tables (same SQLite file, or same
    PostgreSQL schema); ``None`` for a store without feature tables."""
    if not isinstance(store, FeatureTables):
        return None
    if store.dialect.name == "postgresql":
        return PostgresVault(store, master)
    return SQLiteVault(store, master)
