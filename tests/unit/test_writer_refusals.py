"""Which store errors the writer sets aside (dead letters) and which it waits out."""

from __future__ import annotations

import sqlite3

import pytest

from provmark._internal.writer import is_refusal, refusal_reason
from provmark.errors import DataRefused, StoreError


@pytest.mark.parametrize(
    ("exc", "refused"),
    [
        (DataRefused("PostgreSQL refuses the data (SQLSTATE 54000): index row too big"), True),
        (sqlite3.DataError("string or blob too big"), True),
        (sqlite3.IntegrityError("CHECK constraint failed"), True),
        (TypeError("a bug a record runs into"), True),
        (StoreError("postgresql://db:5432/x: connection refused"), False),
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.OperationalError("database or disk is full"), False),
        (OSError(28, "No space left on device"), False),
        (KeyError("Merkle node (0, 7) is missing"), False),
    ],
)
def test_refusals_are_told_from_passing_failures(exc: BaseException, refused: bool) -> None:
    assert is_refusal(exc) is refused


def test_reasons_keep_the_store_words_without_where_it_is() -> None:
    assert refusal_reason(DataRefused("SQLSTATE 54000: too big")) == "SQLSTATE 54000: too big"
    assert refusal_reason(TypeError("bad\nsecond line")) == "TypeError: bad"
    assert len(refusal_reason(ValueError("x" * 2000))) == 500
