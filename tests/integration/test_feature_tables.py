"""Feature tables of a store made by an earlier provmark (made by the features
themselves, no ``feature_migrations``) open, read and upgrade; a store opened only to
read creates nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provmark.crypto.fieldenc import LocalMasterKey
from provmark.privacy.vault import vault_for
from provmark.softbind.store import SQLiteFingerprintStore
from provmark.store.features import FeatureTables, Step
from provmark.store.sqlite import SQLiteStore

# What the features made before the store owned their tables (the SQLite texts).
OLD_DEAD_LETTERS = """CREATE TABLE IF NOT EXISTS dead_letters (
    record_id TEXT PRIMARY KEY, at TEXT NOT NULL, reason TEXT NOT NULL, record TEXT NOT NULL,
    times INTEGER NOT NULL)"""
OLD_VAULT = (
    """CREATE TABLE IF NOT EXISTS pm_subject_keys (
        key_id TEXT PRIMARY KEY, subject TEXT NOT NULL, master_key_id TEXT NOT NULL,
        wrapped {blob}, created_at TEXT NOT NULL, erased_at TEXT, erase_reason TEXT)""",
    """CREATE TABLE IF NOT EXISTS pm_ciphertexts (
        record_id TEXT NOT NULL, path TEXT NOT NULL, key_id TEXT NOT NULL,
        ciphertext {blob} NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (record_id, path))""",
    """CREATE TABLE IF NOT EXISTS pm_access_log (
        seq {serial}, at TEXT NOT NULL, principal TEXT NOT NULL, role TEXT NOT NULL,
        action TEXT NOT NULL, record_id TEXT, fields TEXT NOT NULL, reason TEXT,
        chain TEXT NOT NULL)""",
)
# scheme 1: before the scheme and anchors columns
OLD_SOFTBIND_SQLITE = """
CREATE TABLE softbind_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE softbind_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT NOT NULL, kind TEXT NOT NULL,
    media_type TEXT, size INTEGER NOT NULL, shingles INTEGER, width INTEGER, height INTEGER,
    signature BLOB, parts BLOB NOT NULL, cost_us INTEGER NOT NULL, created_at REAL NOT NULL,
    UNIQUE (record_id, kind));
CREATE TABLE softbind_bands (key INTEGER NOT NULL, item INTEGER NOT NULL,
    PRIMARY KEY (key, item)) WITHOUT ROWID;
CREATE TABLE softbind_parts (hash INTEGER NOT NULL, item INTEGER NOT NULL, ord INTEGER NOT NULL,
    kind INTEGER NOT NULL, words INTEGER NOT NULL, PRIMARY KEY (hash, item, ord)) WITHOUT ROWID;
CREATE TABLE softbind_codes (item INTEGER NOT NULL, region INTEGER NOT NULL,
    phash INTEGER NOT NULL, dhash INTEGER NOT NULL, colour INTEGER NOT NULL,
    PRIMARY KEY (item, region)) WITHOUT ROWID;
INSERT INTO softbind_items (record_id, kind, size, parts, cost_us, created_at)
    VALUES ('r-old', 'image', 100, X'', 7, 1.0);
"""
MASTER = LocalMasterKey(b"m" * 32)


def _old_tables(tables: FeatureTables, conn: Any) -> None:
    d = tables.dialect
    conn.execute(d.ddl(OLD_DEAD_LETTERS))
    conn.execute(
        d.sql("INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?)"),
        ("r-dead", "2026-01-01T00:00:00Z", "refused", "{}", 3),
    )
    for stmt in OLD_VAULT:
        conn.execute(d.ddl(stmt))
    conn.execute(
        d.sql(
            "INSERT INTO pm_subject_keys (key_id, subject, master_key_id, wrapped, created_at,"
            " erased_at) VALUES (?, ?, ?, NULL, ?, ?)"
        ),
        ("k-old", "hmac-sha256:aa", MASTER.key_id, "2026-01-01T00:00:00Z", "2026-01-02"),
    )


def _recorded(tables: FeatureTables) -> dict[str, int]:
    with tables.connect() as conn:
        rows = conn.execute("SELECT feature, max(version) FROM feature_migrations GROUP BY feature")
        return {str(f): int(v) for f, v in rows.fetchall()}


def _check_reads(store: Any) -> None:
    (letter,) = store.dead_letters()
    assert (letter.record_id, letter.times) == ("r-dead", 3)
    store.add_dead_letter("r-dead", "again", "{}")
    assert store.dead_letters()[0].times == 4
    vault = vault_for(store, MASTER)
    assert vault is not None
    keys = vault.keys(subject=None)
    assert [k.key_id for k in keys] == ["k-old"]
    vault.close()


@pytest.fixture()
def old_sqlite(tmp_path: Path) -> Iterator[SQLiteStore]:
    path = tmp_path / "old.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.executescript(OLD_SOFTBIND_SQLITE)
    db.close()
    store = SQLiteStore(path)
    with store.transaction() as conn:
        _old_tables(store, conn)
    yield store
    store.close()


def test_sqlite_store_of_an_earlier_version(old_sqlite: SQLiteStore) -> None:
    assert _recorded_or_none(old_sqlite) is None
    _check_reads(old_sqlite)
    prints = SQLiteFingerprintStore(old_sqlite)  # scheme-1 tables get the new columns
    (item,) = prints.items_of("r-old")
    assert item["scheme"] == 1 and item["cost_us"] == 7
    prints.close()
    assert _recorded(old_sqlite) == {"dead_letters": 1, "vault": 1, "softbind": 1}
    reopened = SQLiteStore(old_sqlite.path)
    assert reopened.dead_letter_count() == 1
    reopened.close()


def test_a_store_opened_to_read_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    SQLiteStore(path).close()
    reader = SQLiteStore(path, create=False)
    steps = [Step("t", "CREATE TABLE t (x TEXT)")]
    assert reader.ensure_feature("t", steps) == 0
    assert reader.dead_letters() == [] and reader.dead_letter_count() == 0
    reader.close()
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "t" not in names and "feature_migrations" not in names
    assert "dead_letters" not in names


@pytest.mark.postgres
def test_postgres_store_of_an_earlier_version(pg_url: str) -> None:
    from provmark.softbind.store_pg import PostgresFingerprintStore
    from provmark.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        with store.transaction() as conn:
            _old_tables(store, conn)
        assert _recorded_or_none(store) is None
        _check_reads(store)
        PostgresFingerprintStore(store).close()
        assert _recorded(store) == {"dead_letters": 1, "vault": 1, "softbind": 1}
        reader = PostgresStore(pg_url, create=False)
        assert reader.ensure_feature("other", [Step("t", "CREATE TABLE t (x TEXT)")]) == 0
        assert reader.dead_letter_count() == 1
        reader.close()
    finally:
        store.close()


def _recorded_or_none(tables: FeatureTables) -> dict[str, int] | None:
    with tables.connect() as conn:
        exists = conn.execute(
            tables.dialect.sql(tables.dialect.table_exists), ("feature_migrations",)
        ).fetchone()
    return _recorded(tables) if exists else None
