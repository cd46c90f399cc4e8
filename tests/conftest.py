"""Shared fixtures: real SQLite files and real keys in a temporary folder."""

from __future__ import annotations

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
