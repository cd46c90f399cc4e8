"""A writer killed with SIGKILL loses no record that capture acknowledged (durable=True)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import provmark
from provmark.verification.audit import audit

WRITER = textwrap.dedent(
    """
    import sys, provmark
    db, home = sys.argv[1], sys.argv[2]
    # a long flush interval: most records sit in the queue, only in the journal on disk
    pm = provmark.open(db, home=home, durable=True, flush_interval=30, batch_size=10_000)
    for i in range(100_000):
        with pm.record(model="acme/m", input=f"prompt {i}") as rec:
            rec.set_output(f"output {i}")
        print(rec.record_id, flush=True)   # acknowledged: capture returned
    """
)


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked = []
    for line in proc.stdout:
        acked.append(line.strip())
        if len(acked) == 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked += [line.strip() for line in proc.stdout if line.strip()]
    assert (tmp_path / "p.db.journal").stat().st_size > 0, "records were waiting in the journal"

    with provmark.open(db, home=home) as pm:  # any open replays a dead writer's journal
        stored = pm.store.has(acked)
        assert stored == set(acked), f"{len(set(acked) - stored)} acknowledged records lost"
        # the writer may have journaled one more record than it could print
        count = pm.store.count()
        assert count >= len(acked)
        assert audit(pm).ok
        assert pm.verify("output 0").record.input.snapshot == "prompt 0"
    # replaying again changes nothing (idempotent)
    with provmark.open(db, home=home, durable=True) as pm:
        assert pm.store.count() == count


def test_close_flushes_everything(tmp_path: Path) -> None:
    with provmark.open(
        tmp_path / "p.db", home=tmp_path, flush_interval=30, batch_size=100_000
    ) as pm:
        for i in range(1000):
            with pm.record(model="m", input=str(i)) as rec:
                rec.set_output(str(i))
    with provmark.open(tmp_path / "p.db", home=tmp_path) as pm:
        assert pm.store.count() == 1000


def test_interpreter_exit_flushes(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import provmark
        pm = provmark.open({str(tmp_path / "p.db")!r}, home={str(tmp_path)!r}, flush_interval=30)
        for i in range(50):
            with pm.record(model="m", input=str(i)) as rec:
                rec.set_output(str(i))
        # no close(): the atexit hook must flush
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    with provmark.open(tmp_path / "p.db", home=tmp_path) as pm:
        assert pm.store.count() == 50
