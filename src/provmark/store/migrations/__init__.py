"""Versioned SQL migrations of the PostgreSQL store.

Each ``NNNN_name.sql`` file in this package is one schema version. They are
applied in order, all pending ones in one transaction (PostgreSQL DDL is
transactional, so an upgrade is all or nothing), and each is recorded in the
``schema_migrations`` table. A database whose schema is newer than the newest
file here raises :class:`~provmark.errors.SchemaVersionError`.

Several processes may open the same database at once: the upgrade takes an
advisory lock and re-reads the applied versions inside it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from ...errors import SchemaVersionError, StoreError

# Advisory lock ids: (class, object). The class spells "pvmk"; objects are per schema.
LOCK_CLASS = 0x70766D6B
_MIGRATE_SQL_LOCK = (
    f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext('migrate:' || current_schema()))"
)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """Every migration shipped with this provmark, oldest first."""
    found = []
    for item in resources.files(__package__).iterdir():
        m = _NAME.match(item.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), item.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"store migrations are not numbered 1..n: {versions}")
    return found


def latest() -> int:
    """The schema version this provmark writes."""
    return len(available())


def current(conn: psycopg.Connection[Any]) -> int:
    """The schema version of the database (0 when provmark never touched it).

    Both tables are looked up in one statement, and a foreign-looking answer is asked
    twice: another process creating the store commits ``schema_migrations`` and
    ``records`` together, so a reader between two separate lookups would see only
    ``records`` and take a provmark store for another application's."""
    for _ in range(2):
        row = conn.execute(
            "SELECT to_regclass('schema_migrations') IS NOT NULL,"
            " to_regclass('records') IS NOT NULL"
        ).fetchone()
        migrations_table, records_table = (bool(row[0]), bool(row[1])) if row else (False, False)
        if migrations_table:
            found = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            return int(found[0]) if found and found[0] is not None else 0
        if not records_table:
            return 0
    raise StoreError(
        "the database has a 'records' table but no 'schema_migrations': it belongs to "
        "another application (or schema); refusing to touch it"
    )


def check(version: int, where: str) -> None:
    known = latest()
    if version > known:
        raise SchemaVersionError(
            f"{where} was written by a newer provmark (store schema v{version}, this one "
            f"knows up to v{known}); upgrade provmark"
        )


def migrate(conn: psycopg.Connection[Any], *, target: int | None = None, where: str = "") -> int:
    """Apply pending migrations up to ``target`` (default: all); return the new version.

    ``conn`` must be in autocommit mode (no transaction open).
    """
    migrations = available()
    goal = len(migrations) if target is None else target
    if not 0 <= goal <= len(migrations):
        raise StoreError(f"no store schema v{goal}; this provmark knows v1..v{len(migrations)}")
    with conn.transaction():
        conn.execute(_MIGRATE_SQL_LOCK)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        version = current(conn)
        check(version, where or "the database")
        for mig in migrations[version:goal]:
            try:
                conn.execute(mig.sql.encode())
            except psycopg.Error as exc:
                raise StoreError(
                    f"store migration {mig.version:04d}_{mig.name} failed: {exc}"
                ) from None
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (mig.version, mig.name, mig.checksum),
            )
            version = mig.version
    return version
