"""A full disk and read-only media, for real (issue 18, item 5): a small tmpfs mounted for
the test (we are root; skipped where mounting is not allowed), PostgreSQL with its
``records`` table on a tablespace in it. The first capture after the store stops
writing fails with a clear error, ``close()`` neither hangs nor hides the cause, and
the reading commands on read-only media write nothing and exit 2, never a traceback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import provmark
from provmark.errors import CaptureError, StoreError
from provmark.verification.audit import audit

BIG = "lorem ipsum dolor sit amet " * 150  # ~4 kB per record: the disk fills quickly


def mount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


@contextlib.contextmanager
def mounted(where: Path) -> Iterator[Path]:
    where.mkdir(exist_ok=True)
    try:
        mount(where, "size=4m,mode=0777")
    except (subprocess.CalledProcessError, FileNotFoundError, PermissionError):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    with mounted(tmp_path / "tiny") as where:
        yield where


@pytest.fixture
def tiny_for_postgres() -> Iterator[Path]:
    """Outside pytest's private temporary folder: the postgres user must reach it."""
    top = Path(tempfile.mkdtemp(prefix="provmark-tiny-", dir="/tmp"))
    top.chmod(0o755)
    try:
        with mounted(top / "fs") as where:
            yield where
    finally:
        shutil.rmtree(top, ignore_errors=True)


def capture_until_refused(pm: provmark.Provmark, limit: int = 200_000) -> tuple[list[str], str]:
    """A few records stored first, then capture until a capture raises; the acknowledged
    ids and the error."""
    acked: list[str] = []
    for i in range(20):
        with pm.record(model="acme/m", input=f"first {i}") as rec:
            rec.set_output(f"first {i}")
        acked.append(rec.record_id or "")
    pm.flush()
    for i in range(limit):
        try:
            with pm.record(model="acme/m", input=f"{i} {BIG}") as rec:
                rec.set_output(f"output {i}")
        except CaptureError as exc:
            return acked, str(exc)
        acked.append(rec.record_id or "")
    raise AssertionError(f"{limit} captures accepted on a full disk")


def close_within(pm: provmark.Provmark, seconds: float) -> BaseException | None:
    """close() in a thread: the error it raised (None if none); fails if it hangs."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pm.close()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"close() still running after {seconds}s"
    return errors[0] if errors else None


def test_full_disk_default_mode(tiny: Path, tmp_path: Path) -> None:
    pm = provmark.open(tiny / "p.db", home=tmp_path / "home", flush_interval=0.01)
    acked, error = capture_until_refused(pm)
    assert "disk full" in error and "database or disk is full" in error
    stored_before = pm.store.count()
    assert stored_before, "some records fit"
    # the error says how many captured records wait; every later capture fails at once
    assert f"{len(acked) - stored_before} captured records are waiting" in error
    with pytest.raises(CaptureError, match="disk full"), pm.record(model="m") as rec:
        rec.set_output("one more")
    closed = close_within(pm, 30)
    assert closed is None or "cannot rollback" not in str(closed)
    if closed is not None:
        assert "disk full" in str(closed)
    # the disk is still full: the reading commands work and write nothing
    home = tmp_path / "home"
    out = run_cli("audit", "--db", str(tiny / "p.db"), home=home)
    assert out.returncode == 0 and "audit: OK" in out.stdout, out.stdout + out.stderr
    out = run_cli("verify", "--db", str(tiny / "p.db"), "--text", "first 3", home=home)
    assert out.returncode == 0, out.stderr
    out = run_cli("verify", "--db", str(tiny / "p.db"), "--text", "output 0", home=home)
    assert out.returncode in (0, 1) and "Traceback" not in out.stderr
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny)], check=True)
    with provmark.open(tiny / "p.db", home=tmp_path / "home") as pm:
        assert audit(pm).ok
        assert pm.store.count() >= stored_before


def test_full_disk_durable_mode_loses_no_acknowledged_record(tiny: Path, tmp_path: Path) -> None:
    pm = provmark.open(tiny / "p.db", home=tmp_path / "home", durable=True, flush_interval=0.01)
    acked, error = capture_until_refused(pm)
    # where it met the full disk: the vault (sealing the prompt), the journal or the store
    assert any(w in error for w in ("disk is full", "disk full", "No space left on device"))
    close_within(pm, 30)
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny)], check=True)
    with provmark.open(tiny / "p.db", home=tmp_path / "home") as pm:  # replays the journal
        assert pm.store.has(acked) == set(acked)
        assert audit(pm).ok


def test_full_disk_postgres(tiny_for_postgres: Path, tmp_path: Path, pg_url: str) -> None:
    """The ``records`` table on a 4 MB tablespace: PostgreSQL says "could not extend file"."""
    import psycopg

    tiny = tiny_for_postgres
    os.chown(tiny, _postgres_uid(), -1)
    name = f"tiny_{tmp_path.name[-12:].replace('-', '_')}"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"CREATE TABLESPACE {name} LOCATION '{tiny}'".encode())
    try:
        pm = provmark.open(pg_url, home=tmp_path / "home", flush_interval=0.01)
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"ALTER TABLE records SET TABLESPACE {name}".encode())
        _, error = capture_until_refused(pm)
        assert "disk full" in error, error
        stored_before = pm.store.count()
        closed = close_within(pm, 30)
        assert closed is None or "disk full" in str(closed)
        with provmark.open(pg_url, home=tmp_path / "home") as pm:
            assert pm.store.count() == stored_before
            with psycopg.connect(pg_url, autocommit=True) as con:
                con.execute(b"ALTER TABLE records SET TABLESPACE pg_default")
            assert audit(pm).ok
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(b"DROP TABLE IF EXISTS records CASCADE")
            con.execute(f"DROP TABLESPACE IF EXISTS {name}".encode())


def _postgres_uid() -> int:
    import pwd

    try:
        return pwd.getpwnam("postgres").pw_uid
    except KeyError:
        pytest.skip("no local postgres user: the server is elsewhere")


def run_cli(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provmark.cli", *argv, "--home", str(home)],
        capture_output=True,
        text=True,
    )


def test_read_only_media(tiny: Path, tmp_path: Path) -> None:
    """Store and home on media remounted read-only: verify, audit, show and log read,
    write nothing, and an impossible write is exit 2 with the reason."""
    db, home = tiny / "p.db", tiny / "home"
    with provmark.open(db, home=home) as pm:
        for i in range(5):
            with pm.record(model="acme/m", input=str(i)) as rec:
                rec.set_output(f"answer {i}")
        first = rec.record_id or ""
    subprocess.run(["mount", "-o", "remount,ro", str(tiny)], check=True)
    listing = sorted(str(p) for p in tiny.rglob("*"))
    out = run_cli("verify", "--db", str(db), "--text", "answer 2", home=home)
    assert out.returncode == 0, out.stderr
    out = run_cli("audit", "--db", str(db), home=home)
    assert out.returncode == 0 and "audit: OK" in out.stdout, out.stderr
    assert run_cli("show", first, "--db", str(db), home=home).returncode == 0
    out = run_cli("log", "--db", str(db), home=home)
    assert out.returncode == 0 and out.stdout.count("\n") == 5
    # a home that never held keys, on read-only media: nothing to create, still verifies
    out = run_cli("verify", "--db", str(db), "--text", "answer 1", home=tiny / "nothing")
    assert out.returncode == 0, out.stderr
    # not found is "not verified" (1); anything else is never a traceback
    out = run_cli("verify", "--db", str(db), "--text", "never made", home=home)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert sorted(str(p) for p in tiny.rglob("*")) == listing
    with pytest.raises(StoreError, match="read_only=True"):
        provmark.open(db, home=home)  # to capture: refused at once, with the reason
    out = run_cli("bundle", first, "--db", str(db), "-o", str(tiny / "b.json"), home=home)
    assert out.returncode == 2 and "Read-only file system" in out.stderr, out.stderr
