"""Bad database files give clear errors and are never modified."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

import provmark
from provmark import SchemaVersionError, StoreError
from provmark.record import now_utc as _now
from provmark.store.sqlite import SQLiteStore


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not sqlite" * 100)
    before = digest(path)
    with pytest.raises(StoreError, match="not a provmark database"):
        provmark.open(path, home=tmp_path)
    assert digest(path) == before


def test_foreign_sqlite_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.execute("INSERT INTO invoices VALUES (1)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="another application"):
        SQLiteStore(path)
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["invoices"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(SchemaVersionError, match="newer provmark"):
        SQLiteStore(path)


def test_missing_folder_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(tmp_path / "nope" / "p.db")
    with pytest.raises(StoreError, match="directory"):
        SQLiteStore(tmp_path)


def test_append_is_idempotent_and_origin_is_stable(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with provmark.open(path, home=tmp_path) as pm:
        ids = pm.ingest(
            [
                {
                    "record_id": "01a2136c-caee-7fed-a001-04a670353402",
                    "generated_at": _now(),  # within the signing key's window
                    "model": {"name": "m"},
                    "output": {"sha256": "a" * 64},
                }
            ]
        )
        pm.ingest(
            [
                {
                    "record_id": ids[0],
                    "generated_at": _now(),  # within the signing key's window
                    "model": {"name": "m"},
                    "output": {"sha256": "a" * 64},
                }
            ]
        )
        origin = pm.store.origin
        assert pm.store.count() == 1 and pm.store.tree_size() == 1
    assert SQLiteStore(path).origin == origin


def test_bad_batch_stores_nothing(tmp_path: Path) -> None:
    with provmark.open(tmp_path / "p.db", home=tmp_path) as pm:
        good = {
            "record_id": "01a2136c-caee-7fed-a001-04a670353402",
            "generated_at": _now(),  # within the signing key's window
            "model": {"name": "m"},
        }
        with pytest.raises(provmark.RecordError, match=r"\[1\]\.model"):
            pm.ingest(
                [good, {**good, "record_id": "01a2136c-caee-7fed-a001-04a670353403", "model": {}}]
            )
        assert pm.store.count() == 0


def test_two_processes_share_one_log(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys, provmark
        with provmark.open(sys.argv[1], home=sys.argv[2], batch_size=7, flush_interval=0.001) as pm:
            for i in range(200):
                with pm.record(model="m", input=sys.argv[3] + str(i)) as rec:
                    rec.set_output(sys.argv[3] + str(i))
        """
    )
    db = tmp_path / "shared.db"
    provmark.open(db, home=tmp_path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(db), str(tmp_path), tag])
        for tag in ("a", "b")
    ]
    assert all(p.wait(60) == 0 for p in procs)
    from provmark.verification.audit import audit

    with provmark.open(db, home=tmp_path) as pm:
        assert pm.store.count() == 400
        assert audit(pm).ok


def test_ingest_names_a_param_that_json_cannot_hold_exactly(tmp_path: Path) -> None:
    with provmark.open(tmp_path / "p.db", home=tmp_path) as pm:
        record = {
            "record_id": "01a2136c-caee-7fed-a001-04a670353402",
            "generated_at": _now(),  # within the signing key's window
            "model": {"name": "m"},
            "params": {"seed": 2**60 + 1},
        }
        with pytest.raises(provmark.RecordError, match=r"\[0\]\.params\.seed"):
            pm.ingest([record])
        with pytest.raises(provmark.RecordError, match=r"\[0\]\.params"):
            pm.ingest([{**record, "params": {"t": float("nan")}}])
        assert pm.store.count() == 0
        pm.ingest([{**record, "params": {"seed": str(2**60 + 1), "t": 0.5}}])
        assert pm.get(record["record_id"]).params == {"seed": str(2**60 + 1), "t": 0.5}


def test_secondary_outputs_verify_and_old_stores_are_indexed_on_open(tmp_path: Path) -> None:
    """Every output of a v2 record verifies; a store made before the outputs table gets
    it, filled from the records already there, when it is opened."""
    from provmark.record import new_record_id, now_utc

    contents = [b"first image", b"second image", b"third image"]
    outputs = [{"sha256": hashlib.sha256(c).hexdigest(), "size": len(c)} for c in contents]
    db = tmp_path / "p.db"
    with provmark.open(db, home=tmp_path / "home") as pm:
        [rid] = pm.ingest(
            [
                {
                    "record_id": new_record_id(),
                    "generated_at": now_utc(),
                    "operation": "image_generation",
                    "model": {"name": "acme/painter"},
                    "outputs": outputs,
                }
            ]
        )
        for c in contents:
            assert pm.verify(c).record.record_id == rid
        assert [r.record_id for r in pm.find(output=contents[1]).records] == [rid]
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE outputs")
    with provmark.open(db, home=tmp_path / "home") as pm:
        assert pm.verify(contents[2]).record.record_id == rid
        assert pm.store.by_output(outputs[0]["sha256"])[0].record_id == rid
