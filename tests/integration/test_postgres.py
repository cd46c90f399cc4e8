"""PostgreSQL end to end: provmark.open, migrations, crashes and broken connections.

Uses the real server at 127.0.0.1:5432: one database per run
(``provmark_test_<random>``, dropped at the end), one schema per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark._internal.writer import sign_draft
from provmark.bundle import verify_bundle
from provmark.crypto.keystore import FileKeyStore
from provmark.errors import SchemaVersionError, StoreError
from provmark.log.merkle import CompactRange
from provmark.log.note import Checkpoint
from provmark.record import new_record_id, now_utc, validate_record
from provmark.verification.audit import audit

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.postgres

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture()
def schema(pg_database: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return name


@pytest.fixture()
def url(pg_database: str, schema: str) -> str:
    return f"{pg_database}?options=-csearch_path%3D{schema}&application_name={schema}"


def records(n: int, *, model: str = "acme/sum", prefix: str = "r") -> list[dict[str, Any]]:
    return [
        {
            "record_id": new_record_id(),
            "generated_at": now_utc(),
            "model": {"name": model},
            "output": {"sha256": hashlib.sha256(f"{prefix}-{i}".encode()).hexdigest()},
            "tags": {"batch": prefix},
        }
        for i in range(n)
    ]


def test_open_capture_verify_bundle_audit(url: str, tmp_path: Path) -> None:
    with provmark.open(url, home=tmp_path) as pm:
        assert type(pm.store).__name__ == "PostgresStore"

        @pm.capture(model=provmark.Model("acme/summarizer", version="3.2"), tags={"app": "t"})
        def summarize(text: str) -> str:
            return text.upper()[:20]

        outputs = [summarize(f"article number {i}") for i in range(20)]
        verified = pm.verify(outputs[7])
        assert verified.record.model.name == "acme/summarizer"
        bundle = pm.bundle(verified.record.record_id)
        assert (
            pm.find(tags={"app": "t"}, limit=100).records[0].record_id
            == pm.find().records[0].record_id
        )
        ids = pm.ingest(records(50))
        assert pm.get(ids[3]).record_id == ids[3]
        with pytest.raises(provmark.VerificationError):
            pm.verify("never made here")
        report = audit(pm)
        assert report.ok and report.records == 70 and report.checkpoint_size == 70
    content = hashlib.sha256(outputs[7].encode()).hexdigest()
    assert (
        verify_bundle(bundle, content_sha256=content).record.record_id == verified.record.record_id
    )


# ------------------------------------------------------------------ migrations
def write_v1_log(url: str, home: Path, drafts: list[dict[str, Any]]) -> str:
    """A database as provmark with store schema v1 left it (independent of today's code)."""
    from provmark.store import migrations

    keys = FileKeyStore(home / "keys")
    signer, log_key = keys.signer("records"), keys.signer("log").private_key  # type: ignore[attr-defined]
    origin = f"provmark.local/log/{uuid.uuid4().hex[:16]}"
    rng = CompactRange()
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrations.migrate(conn, target=1) == 1
        with conn.transaction():
            conn.execute(
                "INSERT INTO meta VALUES ('origin', %s), ('created_at', %s)", (origin, now_utc())
            )
            for i, draft in enumerate(drafts):
                e = sign_draft(validate_record(draft).payload_dict(), signer)
                conn.execute(
                    "INSERT INTO records VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    (i, e.record_id, e.slug, e.output_sha256, e.model, e.model_version,
                     e.operation, e.status, e.actor, e.generated_at, e.payload,
                     json.dumps(e.signature, sort_keys=True, separators=(",", ":"))),
                )  # fmt: skip
                for k, v in e.tags.items():
                    conn.execute("INSERT INTO tags VALUES (%s, %s, %s)", (k, v, i))
                for (level, idx), h in rng.extend([e.leaf_hash()]):
                    conn.execute("INSERT INTO nodes VALUES (%s, %s, %s)", (level, idx, h))
            note = Checkpoint(origin, rng.size, rng.root()).sign(origin, log_key)
            conn.execute(
                "INSERT INTO checkpoints VALUES (%s, %s, %s, %s)",
                (rng.size, rng.root(), note, now_utc()),
            )
    return origin


def test_upgrade_from_v1_database(url: str, tmp_path: Path) -> None:
    old = records(40, model="acme/old", prefix="v1")
    origin = write_v1_log(url, tmp_path, old)
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            )
        }
        assert "records_model" in indexes and "records_model_idx" not in indexes

    with provmark.open(url, home=tmp_path) as pm:  # opening upgrades v1 -> the latest
        assert pm.store.origin == origin
        assert pm.store.schema_version == 3  # type: ignore[attr-defined]
        for i, rec in enumerate(old):
            got = pm.get(rec["record_id"])
            assert got.log is not None and got.log.index == i
        assert [r.record_id for r in pm.find(model="acme/old", limit=100, order="asc").records] == [
            r["record_id"] for r in old
        ]
        pm.ingest(records(10, prefix="v2"))
        report = audit(pm)
        assert report.ok and report.records == 50, report.findings

    with psycopg.connect(url, autocommit=True) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == [1, 2, 3]
        conn.execute("SET enable_seqscan = off")  # the table is tiny; ask for the index plan
        sql = "EXPLAIN SELECT idx FROM records WHERE model = %s ORDER BY idx DESC LIMIT 51"
        plan = "\n".join(r[0] for r in conn.execute(sql, ("acme/old",)))
        assert "records_model_idx" in plan and "Sort" not in plan


def test_upgraded_records_verify_against_their_content(url: str, tmp_path: Path) -> None:
    old = records(5, prefix="content")
    for i, rec in enumerate(old):
        rec["output"] = {"sha256": hashlib.sha256(f"text {i}".encode()).hexdigest()}
    write_v1_log(url, tmp_path, old)
    with provmark.open(url, home=tmp_path) as pm:
        for i, rec in enumerate(old):
            assert pm.verify(f"text {i}").record.record_id == rec["record_id"]


def test_newer_schema_is_refused(url: str) -> None:
    from provmark.store.postgres import PostgresStore

    PostgresStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x', now())")
    with pytest.raises(SchemaVersionError, match="newer provmark"):
        PostgresStore(url)


def test_old_schema_without_migrate_and_foreign_tables(url: str) -> None:
    from provmark.store import migrations
    from provmark.store.postgres import PostgresStore

    with psycopg.connect(url, autocommit=True) as conn:
        migrations.migrate(conn, target=1)
    with pytest.raises(StoreError, match="migrate=True"):
        PostgresStore(url, migrate=False)
    PostgresStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE schema_migrations")
    with pytest.raises(StoreError, match="another application"):
        PostgresStore(url)


def open_at_once(url: str, n: int) -> tuple[list[str], list[Exception]]:
    """``n`` threads opening the store at ``url`` at the same moment: origins, errors."""
    from provmark.store.postgres import PostgresStore

    start = threading.Barrier(n)
    origins: list[str] = []
    errors: list[Exception] = []

    def open_one() -> None:
        start.wait()
        try:
            store = PostgresStore(url)
        except Exception as exc:  # collected: the assertion names it
            errors.append(exc)
            return
        origins.append(store.origin)
        store.close()

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return origins, errors


def test_several_processes_creating_one_store_at_once(pg_database: str) -> None:
    """Openers racing on a fresh schema all get the one store: none takes it for another
    application's (a reader between two lookups once saw 'records' without
    'schema_migrations', committed together by the first opener)."""
    for _ in range(8):
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        origins, errors = open_at_once(f"{pg_database}?options=-csearch_path%3D{name}", 4)
        assert errors == []
        assert len(set(origins)) == 1 and len(origins) == 4


def test_a_store_created_between_two_lookups_is_not_foreign(pg_database: str) -> None:
    """The interleaving behind the race above, made certain: another opener commits
    ``schema_migrations`` and ``records`` right after the reader's first statement."""
    from provmark.store import migrations

    name = f"t_{uuid.uuid4().hex[:12]}"
    url = f"{pg_database}?options=-csearch_path%3D{name}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    with psycopg.connect(url) as creator, psycopg.connect(url, autocommit=True) as reader:
        creator.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY)")
        creator.execute("CREATE TABLE records (idx bigint PRIMARY KEY)")

        class CommitsAfterFirstStatement:
            def __init__(self) -> None:
                self.statements = 0

            def execute(self, *args: Any) -> Any:
                cursor = reader.execute(*args)
                self.statements += 1
                if self.statements == 1:
                    creator.commit()  # both tables appear between the reader's statements
                return cursor

        assert migrations.current(CommitsAfterFirstStatement()) == 0  # type: ignore[arg-type]
        assert migrations.current(reader) == 0  # now both are there: an empty history


def test_unreachable_server_is_a_store_error() -> None:
    from provmark.store.postgres import PostgresStore

    start = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect"):
        PostgresStore("postgresql://postgres:secret@127.0.0.1:1/nope", connect_timeout=1)
    assert time.monotonic() - start < 10


def test_recovers_from_killed_connections(url: str, schema: str, tmp_path: Path) -> None:
    """Every pooled connection dies (as in a server restart): reads and writes carry on."""
    with provmark.open(url, home=tmp_path) as pm:
        pm.ingest(records(20))
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (schema,),
            ).fetchone()
        assert killed and killed[0] >= 1
        assert pm.store.count() == 20  # a read retries on a fresh connection
        pm.ingest(records(20, prefix="after"))  # the writer retries the failed batch
        assert audit(pm).ok and pm.store.count() == 40


# ------------------------------------------------------------------ kill -9
VICTIM = textwrap.dedent(
    """
    import hashlib, sys, provmark
    from provmark.record import new_record_id, now_utc
    pm = provmark.open(sys.argv[1], home=sys.argv[2], batch_size=2000)
    n = 0
    while True:
        batch = [{"record_id": new_record_id(), "generated_at": now_utc(),
                  "model": {"name": "victim"},
                  "output": {"sha256": hashlib.sha256(str(n + i).encode()).hexdigest()}}
                 for i in range(2000)]
        n += 2000
        pm.ingest(batch)  # returns once committed
        print(" ".join(r["record_id"] for r in batch), flush=True)
    """
)


def _lock_holder(conn: Any, app: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
        (app,),
    ).fetchone()
    return bool(row and row[0])


def test_kill_9_mid_append_loses_no_committed_record(
    pg_database: str, schema: str, tmp_path: Path
) -> None:
    base = f"{pg_database}?options=-csearch_path%3D{schema}"
    victim_url, other_url = f"{base}&application_name=victim", f"{base}&application_name=other"
    with provmark.open(other_url, home=tmp_path) as pm:  # create schema + keys first
        pm.ingest(records(10, prefix="before"))
    script = tmp_path / "victim.py"
    script.write_text(VICTIM)
    proc = subprocess.Popen(
        [sys.executable, str(script), victim_url, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    committed: list[str] = []
    reader = threading.Thread(
        target=lambda: [committed.extend(line.split()) for line in proc.stdout or []]
    )
    reader.start()
    admin = psycopg.connect(pg_database, autocommit=True)
    try:
        deadline = time.monotonic() + 60
        while len(committed) < 4000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(committed) >= 4000, "the victim did not commit anything"
        # Kill it while it holds the sequencer lock, i.e. inside an append transaction.
        while not _lock_holder(admin, "victim") and time.monotonic() < deadline:
            time.sleep(0.001)
        assert _lock_holder(admin, "victim"), "never caught the victim appending"
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(10)
        reader.join(10)
        while _lock_holder(admin, "victim") and time.monotonic() - killed < 10:
            time.sleep(0.01)
        released = time.monotonic() - killed
        assert released < 5, f"the dead sequencer's lock was held {released:.1f}s"
    finally:
        if proc.poll() is None:
            proc.kill()
        admin.close()

    start = time.monotonic()
    with provmark.open(other_url, home=tmp_path) as pm:
        more = pm.ingest(records(100, prefix="after"))  # another sequencer takes over
        took = time.monotonic() - start
        assert took < 10
        assert pm.store.has(committed) == set(committed)  # nothing acknowledged was lost
        assert pm.store.has(more) == set(more)
        report = audit(pm)
        assert report.ok, report.findings
        assert report.records == report.tree_size == report.checkpoint_size
        assert report.records >= 10 + len(committed) + 100
        assert report.records % 2000 == 110  # whole batches only: none half-written


def _multi_output(pm: provmark.Provmark, contents: list[bytes]) -> str:
    [rid] = pm.ingest(
        [
            {
                "record_id": new_record_id(),
                "generated_at": now_utc(),
                "operation": "image_generation",
                "model": {"name": "acme/painter"},
                "outputs": [
                    {"sha256": hashlib.sha256(c).hexdigest(), "size": len(c)} for c in contents
                ],
            }
        ]
    )
    return rid


def test_secondary_outputs_verify_and_migration_3_indexes_old_rows(
    url: str, tmp_path: Path
) -> None:
    contents = [b"first image", b"second image", b"third image"]
    with provmark.open(url, home=tmp_path) as pm:
        rid = _multi_output(pm, contents)
        for c in contents:
            assert pm.verify(c).record.record_id == rid
    with psycopg.connect(url, autocommit=True) as conn:  # as a store before migration 3
        conn.execute("DROP TABLE outputs")
        conn.execute("DELETE FROM schema_migrations WHERE version = 3")
    with provmark.open(url, home=tmp_path) as pm:
        assert pm.verify(contents[2]).record.record_id == rid
