"""Shared fixtures: real SQLite files and real keys in a temporary folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import provmark


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "provmark.db"


@pytest.fixture
def pm(db_path: Path, home: Path) -> Iterator[provmark.Provmark]:
    with provmark.open(db_path, home=home, flush_interval=0.01) as pm:
        yield pm


@pytest.fixture
def model() -> provmark.Model:
    return provmark.Model("acme/summarizer", version="3.2", provider="acme")


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def new_pg_database() -> Iterator[str]:
    """Create a PostgreSQL database for a test and drop it afterwards (skip if unreachable)."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    name = f"provmark_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: {exc}")
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database shared by one test module."""
    with new_pg_database() as url:
        yield url


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    pytest.importorskip("provmark.store.postgres")
    with new_pg_database() as url:
        yield url
