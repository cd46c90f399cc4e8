"""`provmark audit` finds rows altered, deleted, inserted or reordered with SQL and byte edits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from provmark import Model, Provmark
from provmark.verification.audit import audit


def fill(pm: Provmark, n: int = 12) -> list[str]:
    ids = []
    for i in range(n):
        with pm.record(model=Model("m"), input=str(i)) as rec:
            rec.set_output(f"out {i}")
        ids.append(rec.record_id or "")
    pm.flush()
    return ids


def sql(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


def kinds(pm: Provmark) -> set[tuple[str, int | None]]:
    return {(f.kind, f.index) for f in audit(pm).findings}


def test_clean_store_passes(pm: Provmark) -> None:
    fill(pm)
    report = audit(pm)
    assert report.ok and report.records == report.tree_size == report.checkpoint_size == 12


def test_altered_row(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    sql(db_path, "UPDATE records SET payload = replace(payload, 'out', 'OUT') WHERE idx = 3")
    found = kinds(pm)
    assert ("altered", 3) in found and ("bad_signature", 3) in found


def test_byte_edit_in_the_file(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    pm.close()  # every connection (the fingerprint thread's too): the -wal is folded in
    data = bytearray(db_path.read_bytes())
    pos = data.find(b'"snapshot":"7"')
    assert pos > 0
    data[pos + len('"snapshot":"')] = ord("8")
    db_path.write_bytes(bytes(data))
    from provmark.store.sqlite import SQLiteStore

    pm.log.store = SQLiteStore(db_path)
    assert ("altered", 7) in kinds(pm)


def test_deleted_row(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    sql(db_path, "DELETE FROM records WHERE idx = 5")
    assert ("deleted", 5) in kinds(pm)


def test_deleted_tail_with_its_leaves(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    sql(
        db_path,
        "DELETE FROM records WHERE idx >= 10",
        "DELETE FROM nodes WHERE level = 0 AND idx >= 10",
    )
    assert any(k == "tree" for k, _ in kinds(pm))


def test_inserted_row(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    sql(
        db_path,
        "INSERT INTO records SELECT 99, 'f0000000-0000-7000-8000-000000000000', slug,"
        " output_sha256, model,"
        " model_version, operation, status, actor, generated_at, payload, signature"
        " FROM records WHERE idx = 2",
    )
    assert ("inserted", 99) in kinds(pm)


def test_reordered_rows(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    sql(
        db_path,
        "UPDATE records SET idx = -1 WHERE idx = 1",
        "UPDATE records SET idx = 1 WHERE idx = 2",
        "UPDATE records SET idx = 2 WHERE idx = -1",
    )
    found = kinds(pm)
    assert ("reordered", 1) in found and ("reordered", 2) in found


def test_rewritten_tree_does_not_match_the_signed_root(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    sql(db_path, "UPDATE nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 0")
    assert any(k == "tree" for k, _ in kinds(pm))


def test_forged_checkpoint(pm: Provmark, db_path: Path) -> None:
    fill(pm)
    sql(
        db_path,
        "UPDATE checkpoints SET note ="
        " replace(note, char(10) || '12' || char(10), char(10) || '13' || char(10))",
    )
    assert any(k == "checkpoint" for k, _ in kinds(pm))
