"""The contract of the capabilities a store may offer beyond the log
(:mod:`provmark.store.features`): feature tables and their migrations, hot rows,
dead letters. Part of :class:`~provmark.testing.StoreContract`; a test is skipped
when the store does not offer the capability it checks.

Needs pytest (it is a test helper).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ..errors import SchemaVersionError
from ..store.base import Query, Store
from ..store.deadletters import DeadLetterStore
from ..store.features import FeatureTables, HotRows, Step

__all__ = ["FeatureContract"]

STEP_1 = Step(
    "things", "CREATE TABLE IF NOT EXISTS contract_things (id {serial}, name TEXT, body {blob})"
)
STEP_2 = Step("note", "ALTER TABLE contract_things ADD COLUMN note TEXT")


def _tables(store: Store) -> FeatureTables:
    if not isinstance(store, FeatureTables):
        pytest.skip(f"{store!r} keeps no feature tables")
    return store


class FeatureContract:
    """Capability tests; mixed into :class:`~provmark.testing.StoreContract`, whose
    ``make_store``, ``store`` and ``log`` fixtures they use."""

    def test_feature_tables_are_made_once_and_recorded(
        self, make_store: Callable[[], Store]
    ) -> None:
        first = _tables(make_store())
        assert first.ensure_feature("contract", [STEP_1]) == 1
        assert first.ensure_feature("contract", [STEP_1]) == 1
        other = _tables(make_store())  # another process: sees the version, applies nothing
        assert other.ensure_feature("contract", [STEP_1]) == 1
        assert _tables(make_store()).ensure_feature("contract", [STEP_1, STEP_2]) == 2
        sql = first.dialect.sql
        with first.transaction() as conn:
            conn.execute(
                sql("INSERT INTO contract_things (name, body, note) VALUES (?, ?, ?)"),
                ("a", b"\x00\xff", "n"),
            )
        with first.connect() as conn:
            rows = conn.execute("SELECT name, body, note FROM contract_things").fetchall()
            steps = conn.execute(
                sql(
                    "SELECT version, name FROM feature_migrations WHERE feature = ?"
                    " ORDER BY version"
                ),
                ("contract",),
            ).fetchall()
        assert [(r[0], bytes(r[1]), r[2]) for r in rows] == [("a", b"\x00\xff", "n")]
        assert [tuple(s) for s in steps] == [(1, "things"), (2, "note")]

    def test_a_newer_feature_schema_is_refused(self, make_store: Callable[[], Store]) -> None:
        _tables(make_store()).ensure_feature("contract", [STEP_1, STEP_2])
        with pytest.raises(SchemaVersionError, match="newer provmark"):
            _tables(make_store()).ensure_feature("contract", [STEP_1])

    def test_a_transaction_is_all_or_nothing(self, store: Store) -> None:
        tables = _tables(store)
        tables.ensure_feature("contract", [STEP_1])
        insert = tables.dialect.sql("INSERT INTO contract_things (name) VALUES (?)")
        with pytest.raises(RuntimeError), tables.transaction() as conn:
            conn.execute(insert, ("gone",))
            raise RuntimeError("stop")
        with tables.connect() as conn:
            assert conn.execute("SELECT count(*) FROM contract_things").fetchone()[0] == 0

    def test_hot_rows_leave_and_come_back(self, store: Store, log: Any) -> None:
        if not isinstance(store, HotRows):
            pytest.skip(f"{store!r} cannot remove record rows")
        entries = log.entries(3, tags={"team": "a"})
        checkpoint = log.append(store, entries)
        gone = [r for r in store.iter_records() if r.index == 1]
        assert store.remove_rows(gone) == 1 and store.remove_rows(gone) == 0
        assert store.get(entries[1].record_id) is None and store.count() == 2
        assert store.tree_size() == 3 and store.latest_checkpoint() == checkpoint
        assert len(store.find(Query(tags={"team": "a"})).records) == 2
        assert store.restore_rows(gone) == 1 and store.restore_rows(gone) == 0
        back = store.get(entries[1].record_id)
        assert back is not None and back.index == 1 and back.payload == entries[1].payload
        assert len(store.find(Query(tags={"team": "a"})).records) == 3
        assert [r.index for r in store.by_output(entries[1].output_sha256 or "")] == [1]

    def test_dead_letters_are_kept_and_counted(self, store: Store) -> None:
        if not isinstance(store, DeadLetterStore):
            pytest.skip(f"{store!r} keeps no dead letters")
        assert store.dead_letter_count() == 0 and store.dead_letters() == []
        store.add_dead_letter("r-1", "too big", '{"a":1}')
        store.add_dead_letter("r-1", "still too big", '{"a":2}')
        store.add_dead_letter("r-2", "x" * 5000, "{}")
        assert store.dead_letter_count() == 2
        letters = {d.record_id: d for d in store.dead_letters()}
        assert letters["r-1"].times == 2 and letters["r-1"].reason == "still too big"
        assert letters["r-1"].record == '{"a":2}' and len(letters["r-2"].reason) == 1000
