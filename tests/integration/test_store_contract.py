"""One contract for every store: SQLiteStore on a temporary file, PostgresStore on a real server.

The tests are ``provmark.testing.StoreContract``, the same base class users subclass for
their own stores. PostgreSQL runs get a database of their own (``provmark_test_<random>``,
dropped at the end) and every test a fresh schema in it, so parallel runs do not collide.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from provmark.store.base import Store
from provmark.testing import StoreContract
from provmark.testing.store_contract import StoreFactory


class TestStores(StoreContract):
    @pytest.fixture(
        params=[
            "sqlite",
            pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("postgres-executemany", marks=pytest.mark.postgres),
        ]
    )
    def make_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
        """A factory of store instances on one fresh log (each instance = one process's view)."""
        opened: list[Store] = []
        if request.param == "sqlite":
            from provmark.store.sqlite import SQLiteStore

            path = tmp_path / "contract.db"

            def make() -> Store:
                store = SQLiteStore(path)
                opened.append(store)
                return store
        else:
            import psycopg

            from provmark.store.postgres import PostgresStore

            db = request.getfixturevalue("pg_database")
            schema = f"t_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{db}?options=-csearch_path%3D{schema}"
            write = "executemany" if request.param.endswith("executemany") else "copy"

            def make() -> Store:
                store = PostgresStore(url, pool_size=2, write=write)
                opened.append(store)
                return store

        yield make
        for store in opened:
            store.close()
