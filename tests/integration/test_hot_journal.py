"""A ``durable=True`` journal left by a dead writer is replayed by any open of the store:
the library without ``durable``, the CLI, the server (issue 18, item 5); a live
writer's journal is left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from server_harness import make_record, start_server

import provmark
from provmark.verification.audit import audit

WRITER = textwrap.dedent(
    """
    import sys, provmark
    target, home, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # a long flush interval: the records sit in the queue, only in the journal on disk
    pm = provmark.open(target, home=home, durable=True, flush_interval=600, batch_size=10**6)
    for i in range(n):
        with pm.record(model="acme/m", input=f"prompt {i}") as rec:
            rec.set_output(f"output {i}")
        print(rec.record_id, flush=True)   # acknowledged: capture returned
    print("all", flush=True)
    import time; time.sleep(600)
    """
)


def acknowledged_then_killed(target: str, home: Path, n: int) -> list[str]:
    """Start a durable writer, read ``n`` acknowledgements, kill -9 it; the acked ids."""
    proc = writer(target, home, n)
    acked = read_acks(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return acked


def writer(target: str, home: Path, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, target, str(home), str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )


def read_acks(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    acked = []
    for line in proc.stdout:
        if line.strip() == "all":
            return acked
        acked.append(line.strip())
    raise AssertionError("the writer died early")


def make_store(db: Path, home: Path) -> None:
    with provmark.open(db, home=home) as pm, pm.record(model="acme/m", input="x") as rec:
        rec.set_output("first")


def test_plain_library_open_replays(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    make_store(db, home)
    acked = acknowledged_then_killed(str(db), home, 49)
    assert (tmp_path / "p.db.journal").stat().st_size > 0
    with provmark.open(db, home=home) as pm:  # no durable=True
        assert pm.store.has(acked) == set(acked)
        assert audit(pm).ok
    assert (tmp_path / "p.db.journal").stat().st_size == 0


def test_cli_replays_and_audit_counts_them(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    make_store(db, home)
    acked = acknowledged_then_killed(str(db), home, 21)
    out = subprocess.run(
        [sys.executable, "-m", "provmark.cli", "audit", "--db", str(db), "--home", str(home)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"records {len(acked) + 1}," in out.stdout


def test_server_replays(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "srv" / "home"
    home.parent.mkdir()
    make_store(db, home)
    acked = acknowledged_then_killed(str(db), home, 59)
    server = start_server(tmp_path / "srv", db=str(db))
    try:
        token = server.token("auditor")
        with server.client(token) as client:
            for record_id in acked[:3] + acked[-3:]:
                assert client.get(f"/v1/records/{record_id}").status_code == 200
    finally:
        server.stop()
    with provmark.open(db, home=home) as pm:
        assert pm.store.has(acked) == set(acked)


def test_live_writer_keeps_its_journal(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    make_store(db, home)
    proc = writer(str(db), home, 30)
    try:
        acked = read_acks(proc)
        journal = tmp_path / "p.db.journal"
        size = journal.stat().st_size
        with provmark.open(db, home=home) as pm:  # the writer is alive: not hot
            assert not pm.store.has(acked)
        assert journal.stat().st_size == size
        # a second durable writer on the same store journals beside the first
        with provmark.open(db, home=home, durable=True, flush_interval=0.01) as pm:
            with pm.record(model="acme/m", input="second") as rec:
                rec.set_output("second writer")
            assert (tmp_path / "p.db.journal-1").exists()
        assert not (tmp_path / "p.db.journal-1").exists()  # empty and closed: removed
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with provmark.open(db, home=home) as pm:
        assert pm.store.has(acked) == set(acked)


def test_read_only_store_reports_the_journal(tmp_path: Path) -> None:
    """An audit that cannot replay (no signing key here) says so instead of OK."""
    db, home = tmp_path / "p.db", tmp_path / "home"
    make_store(db, home)
    acked = acknowledged_then_killed(str(db), home, 10)
    other_home = tmp_path / "reader"
    with provmark.open(db, home=other_home, read_only=True) as pm:
        report = audit(pm)
    assert not other_home.exists()
    assert [f.kind for f in report.findings] == ["journal"]
    assert f"{len(acked)} acknowledged records" in report.findings[0].detail


def test_postgres_plain_open_replays(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    with provmark.open(pg_url, home=home) as pm, pm.record(model="acme/m", input="x") as rec:
        rec.set_output("first")
    acked = acknowledged_then_killed(pg_url, home, 25)
    journals = list(home.glob("journal-*.jsonl"))
    assert journals and journals[0].stat().st_size > 0
    with provmark.open(pg_url, home=home) as pm:
        assert pm.store.has(acked) == set(acked)
        assert audit(pm).ok


@pytest.mark.parametrize("durable", [False, True])
def test_a_journal_line_of_the_old_format_replays_as_written(tmp_path: Path, durable: bool) -> None:
    """Journals written before drafts were typed marked each line ``"__prepared__": true``
    inside the record: such a line is replayed on open (by the hot-journal replay, or by
    a durable writer taking its own file) as the prepared record it is, without the marker
    and without being redacted a second time."""
    db, home = tmp_path / "p.db", tmp_path / "home"
    make_store(db, home)
    record = make_record("made before the upgrade")
    line = {**record, "__prepared__": True}
    (tmp_path / "p.db.journal").write_text(json.dumps(line) + "\n")
    with provmark.open(db, home=home, durable=durable) as pm:
        stored = pm.store.get(record["record_id"])
        assert stored is not None
        assert json.loads(stored.payload) == record  # as journaled: no marker, not re-redacted
        assert pm.verify("made before the upgrade").record.record_id == record["record_id"]
        assert audit(pm).ok
    assert (tmp_path / "p.db.journal").stat().st_size == 0


def test_a_journal_line_is_the_prepared_record(tmp_path: Path) -> None:
    """The durable journal holds prepared records only: redacted, and nothing but the
    record's own fields."""
    db, home = tmp_path / "p.db", tmp_path / "home"
    with provmark.open(db, home=home, durable=True, flush_interval=600, batch_size=10**6) as pm:
        with pm.record(model="acme/m", input="mail jane.doe@example.com") as rec:
            rec.set_output("done")
        (line,) = (tmp_path / "p.db.journal").read_text().splitlines()
        journaled = json.loads(line)
        assert journaled["record_id"] == rec.record_id
        assert not [k for k in journaled if k.startswith("__")]
        assert "jane.doe@example.com" not in line
        assert journaled["input"]["snapshot"] != "mail jane.doe@example.com"
    with provmark.open(db, home=home) as pm:
        assert json.loads(pm.store.get(rec.record_id).payload)["input"] == journaled["input"]
