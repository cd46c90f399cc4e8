"""Audit never says OK over damage (issue 18, item 4): index columns edited behind the
signatures' back, a NULL payload, an empty or foreign file, records lost with a deleted
``-wal`` file or an old copy, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import provmark
from provmark import Model, Provmark
from provmark.errors import StoreError, VerificationError
from provmark.verification.audit import audit

BACKENDS = ["sqlite", "postgres"]


def fill(pm: Provmark, n: int = 12, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        with pm.record(model=Model("acme/m"), input=str(i), tags={"team": "a"}) as rec:
            rec.set_output(f"out {i}")
        ids.append(rec.record_id or "")
    pm.flush()
    return ids


def execute(pm: Provmark, *statements: str) -> None:
    """Edit the store behind provmark's back, with the database's own SQL."""
    if pm.store.__class__.__name__ == "SQLiteStore":
        con = sqlite3.connect(pm.store.path)  # type: ignore[attr-defined]
        for s in statements:
            con.execute(s)
        con.commit()
        con.close()
        return
    import psycopg

    with psycopg.connect(pm._url_for_tests, autocommit=True) as con:  # type: ignore[attr-defined]
        for s in statements:
            con.execute(s.encode())


@pytest.fixture(params=BACKENDS)
def store_pm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provmark]:
    if request.param == "sqlite":
        target = str(tmp_path / "p.db")
        with provmark.open(target, home=tmp_path / "home", flush_interval=0.01) as pm:
            yield pm
        return
    url = request.getfixturevalue("pg_url")
    with provmark.open(url, home=tmp_path / "home", flush_interval=0.01) as pm:
        pm._url_for_tests = url  # type: ignore[attr-defined]
        yield pm


def found(pm: Provmark) -> set[tuple[str, int | None]]:
    return {(f.kind, f.index) for f in audit(pm).findings}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE records SET model = 'evil/other' WHERE idx = 3",
        "UPDATE records SET generated_at = '2001-01-01T00:00:00.000000Z' WHERE idx = 3",
        "UPDATE records SET output_sha256 = "
        "'0000000000000000000000000000000000000000000000000000000000000000' WHERE idx = 3",
        "UPDATE records SET actor = 'mallory' WHERE idx = 3",
        "UPDATE tags SET value = 'b' WHERE idx = 3",
        "INSERT INTO outputs VALUES "
        "('1111111111111111111111111111111111111111111111111111111111111111', 3)",
    ],
    ids=["model", "generated_at", "output_sha256", "actor", "tags", "outputs"],
)
def test_edited_index_columns_are_found(store_pm: Provmark, statement: str) -> None:
    fill(store_pm)
    assert audit(store_pm).ok
    execute(store_pm, statement)
    report = audit(store_pm)
    assert ("index", 3) in {(f.kind, f.index) for f in report.findings}
    # nothing signed changed: signatures and tree hold, only the index lies
    assert {f.kind for f in report.findings} == {"index"}


def test_edited_output_hash_is_what_made_verify_fail(store_pm: Provmark) -> None:
    fill(store_pm)
    execute(store_pm, "UPDATE records SET output_sha256 = 'ab' WHERE idx = 4")
    with pytest.raises(VerificationError):
        store_pm.verify("out 4")  # "not made here": the audit now names why
    detail = [f.detail for f in audit(store_pm).findings if f.index == 4]
    assert detail and "records.output_sha256 is 'ab'" in detail[0]


def test_null_payload_is_reported_not_a_crash(store_pm: Provmark) -> None:
    fill(store_pm)
    if store_pm.store.__class__.__name__ == "SQLiteStore":
        # SQLite enforces NOT NULL: an attacker rebuilds the table without it
        execute(
            store_pm,
            "CREATE TABLE r2 AS SELECT * FROM records",
            "DROP TABLE records",
            "ALTER TABLE r2 RENAME TO records",
            "UPDATE records SET payload = NULL WHERE idx = 5",
        )
    else:
        execute(
            store_pm,
            "ALTER TABLE records ALTER COLUMN payload DROP NOT NULL",
            "UPDATE records SET payload = NULL WHERE idx = 5",
        )
    kinds = found(store_pm)
    assert ("corrupt", 5) in kinds and ("altered", 5) in kinds
    rid = next(f.record_id for f in audit(store_pm).findings if f.kind == "corrupt")
    with pytest.raises(StoreError, match="damaged"):
        store_pm.get(rid or "")


def test_rows_lost_since_the_last_checkpoint_seen(store_pm: Provmark) -> None:
    """An old copy put back (or a dump restored): consistent in itself, but smaller
    than the checkpoint this home verified."""
    fill(store_pm, 10)
    fill(store_pm, 10, start=10)
    store_pm.log.remember_checkpoint()
    execute(
        store_pm,
        "DELETE FROM records WHERE idx >= 10",
        "DELETE FROM tags WHERE idx >= 10",
        "DELETE FROM nodes WHERE (level = 0 AND idx >= 10) OR (level = 1 AND idx >= 5)"
        " OR (level = 2 AND idx >= 2) OR (level = 3 AND idx >= 1) OR level >= 4",
        "DELETE FROM checkpoints WHERE size > 10",
    )
    report = audit(store_pm)
    assert [f.kind for f in report.findings] == ["rollback"], report.findings
    assert "10 confirmed records are gone" in report.findings[0].detail
    with pytest.raises(VerificationError) as err:
        store_pm.verify("out 1")
    assert err.value.check == "rollback"


WRITER = textwrap.dedent(
    """
    import sys, time, provmark
    pm = provmark.open(sys.argv[1], home=sys.argv[2], flush_interval=0.01)
    pm.store._db.execute("PRAGMA wal_autocheckpoint=0")  # everything stays in the -wal
    for i in range(952):
        with pm.record(model="acme/m", input=str(i)) as rec:
            rec.set_output(f"late {i}")
    pm.flush()
    time.sleep(1.1)  # the checkpoint memory is refreshed at most once a second
    with pm.record(model="acme/m", input="last") as rec:
        rec.set_output("last")
    pm.flush()
    time.sleep(0.5)  # the memory is written just after the batch is acknowledged
    print("confirmed", flush=True)
    time.sleep(600)
    """
)


def test_deleted_wal_that_lost_952_confirmed_records(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    with provmark.open(db, home=home, flush_interval=0.01) as pm:
        fill(pm, 100)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "confirmed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    Path(f"{db}-wal").unlink()
    Path(f"{db}-shm").unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-m", "provmark.cli", "audit", "--db", str(db), "--home", str(home)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "rollback" in out.stdout and "953 confirmed records are gone" in out.stdout


def test_empty_file_is_an_error_and_stays_empty(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    for command in ("audit", "log", "verify"):
        extra = ["--text", "x"] if command == "verify" else []
        out = subprocess.run(
            [sys.executable, "-m", "provmark.cli", command, "--db", str(db), *extra],
            capture_output=True,
            text=True,
            env={**os.environ, "PROVMARK_HOME": str(tmp_path / "home")},
        )
        assert out.returncode == 2, out.stdout + out.stderr
        assert "empty file" in out.stderr and "Traceback" not in out.stderr
    assert db.stat().st_size == 0
    assert not (tmp_path / "home").exists()  # no keys made to read nothing
    from provmark.errors import StoreError

    with pytest.raises(StoreError, match="empty file"):
        provmark.open(db, home=tmp_path / "home", read_only=True)
    assert db.stat().st_size == 0


def test_foreign_file_is_an_error_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE songs (title TEXT)")
    con.commit()
    con.close()
    before = db.read_bytes()
    out = subprocess.run(
        [sys.executable, "-m", "provmark.cli", "audit", "--db", str(db), "--home", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "another application" in out.stderr
    assert db.read_bytes() == before
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 100)
    out = subprocess.run(
        [sys.executable, "-m", "provmark.cli", "audit", "--db", str(text), "--home", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "not a provmark database" in out.stderr
    assert text.read_text() == "hello, not a database\n" * 100


def test_file_replaced_by_a_new_store_is_noticed(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    with provmark.open(db, home=home) as pm:
        fill(pm, 5)
    db.write_bytes(b"")  # truncated to 0 bytes; the library then starts a new log in it
    with provmark.open(db, home=home) as pm:
        report = audit(pm)
    assert [f.kind for f in report.findings] == ["replaced"]
