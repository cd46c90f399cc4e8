"""Retention, legal holds, archival to Parquet, restore and backups, as a user runs them."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark.cli import main
from provmark.errors import ConfigError, NotFoundError, VerificationError
from provmark.governance import (
    active_holds,
    apply,
    audit_with_archives,
    create_archive,
    known_archives,
    parse_policy,
    place_hold,
    plan,
    release_hold,
    restore_archive,
    verify_in_archive,
)
from provmark.store.base import Query
from provmark.verification.audit import audit

pytest.importorskip("pyarrow", reason="archives need pyarrow")
pytest.importorskip("fsspec", reason="archives need fsspec")

LATER = datetime.now(UTC) + timedelta(days=400)
POLICY = """
[archive]
to = "{to}"

[defaults]
hot = "90d"
delete_after = "7y"

[[rule]]
name = "chat"
model = "acme/chat*"
hot = "30d"
delete_after = "1y"
"""


def make(pm: provmark.Provmark, n: int, *, model: str = "acme/chat", **tags: str) -> list[str]:
    """n real generations; returns their texts (the outputs users will verify)."""
    texts = []
    for i in range(n):
        text = f"{model} answer {i} {tags}"
        with (
            pm.acting_for(f"user-{i % 3}"),
            pm.record(model=provmark.Model(model), input=f"question {i}") as rec,
        ):
            rec.tag(**tags)
            rec.set_output(text)
        texts.append(text)
    pm.flush()
    return texts


def cli(tmp_path: Path, *argv: str) -> int:
    return main([*argv, "--db", str(tmp_path / "provmark.db"), "--home", str(tmp_path / "home")])


def hot_count(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM records").fetchone()[0])


# ---------------------------------------------------------------- policies


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[defaults]\nhot = "90d"\nhoot = "1d"', "unknown key 'hoot'"),
        ('[defaults]\nhot = "-5d"', "is not a period"),
        ('[defaults]\nhot = "90 days"', "is not a period"),
        ('[defaults]\nhot = "900000y"', "impossible period"),
        ('[defaults]\nhot = "90d"\ndelete_after = "30d"', "shorter than hot"),
        ('[[rule]]\nhot = "1d"', "matches nothing"),
        ('[[rule]]\nmodel = "m"\nhot = "1d"\nsurprise = 1', r"rule\[0\]: unknown key 'surprise'"),
        ("[defaults\n", "not valid TOML"),
        ("", "does nothing"),
        ('[retention]\nhot = "1d"', "unknown key 'retention'"),
    ],
)
def test_bad_policy_files_are_refused_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(text, "policy.toml")


def test_policy_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(POLICY.format(to=tmp_path / "arch"))
    assert main(["retention", "check", str(good)]) == 0
    assert "chat: model=acme/chat* -> hot 30d, delete after 1y" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[defaults]\nhot = "90d"\ndelete_after = "1d"\n')
    assert main(["retention", "check", str(bad)]) == 2
    assert "defaults.delete_after: 1d is shorter than hot = 90d" in capsys.readouterr().err


# ---------------------------------------------------------------- archive, verify, restore


def test_archive_verify_offline_audit_and_restore_via_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "provmark.db"
    with provmark.open(db, home=tmp_path / "home") as pm:
        texts = make(pm, 12, team="a")
    answer = tmp_path / "answer.txt"
    answer.write_text(texts[3])
    arch = tmp_path / "cold"

    assert cli(tmp_path, "archive", "--to", str(arch), "--older-than", "0h", "--dry-run") == 0
    assert "would archive 12 records" in capsys.readouterr().out
    assert cli(tmp_path, "archive", "--to", str(arch), "--older-than", "0h") == 0
    out = capsys.readouterr().out
    assert "archived 12 records" in out and "12 rows removed from the hot store" in out
    assert hot_count(db) == 1  # only the logged archive action
    assert list(arch.glob("date=*/*.parquet")) and list(arch.glob("_manifests/*.json"))

    # The hot store no longer has it; the archive proves it, offline, with no database.
    assert cli(tmp_path, "verify", str(answer)) == 1
    capsys.readouterr()
    assert main(["verify", str(answer), "--archive", str(arch)]) == 0
    out = capsys.readouterr().out
    for check in ("archive_manifest", "archive_file", "output_hash", "inclusion_proof"):
        assert f"ok  {check}" in out
    # The manifest itself was logged: it verifies against the live store.
    manifest = next(arch.glob("_manifests/*.json"))
    assert cli(tmp_path, "verify", str(manifest)) == 0
    capsys.readouterr()

    # The log never lost a leaf: a plain audit sees missing rows, the archive-aware one is clean.
    with provmark.open(db, home=tmp_path / "home") as pm:
        assert {f.kind for f in audit(pm).findings} == {"deleted"}
        assert pm.store.tree_size() == 13
    assert cli(tmp_path, "archive", "--audit") == 0
    assert "12 archived" in capsys.readouterr().out
    assert cli(tmp_path, "archive", "--check", str(arch), "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["records"] == 12
    assert cli(tmp_path, "archive", "--list") == 0
    assert "12 records" in capsys.readouterr().out

    assert cli(tmp_path, "restore", str(arch)) == 0
    assert "restored 12 records" in capsys.readouterr().out
    assert cli(tmp_path, "audit") == 0
    assert cli(tmp_path, "verify", str(answer)) == 0
    with provmark.open(db, home=tmp_path / "home") as pm:
        ops = [r.operation for r in pm.find(model="provmark/governance", order="asc").records]
    assert ops == ["governance.archive", "governance.restore"]


def test_archive_to_an_fsspec_url_and_a_v2_multi_output_record(tmp_path: Path) -> None:
    url = f"memory://provmark-test-{tmp_path.name}"
    first, second = b"first image bytes", b"second image bytes"
    import hashlib

    outputs = [{"sha256": hashlib.sha256(x).hexdigest(), "size": len(x)} for x in (first, second)]
    with provmark.open(tmp_path / "p.db", home=tmp_path / "home") as pm:
        make(pm, 3)
        [rid] = pm.ingest(
            [
                {
                    "record_id": provmark.record.new_record_id(),
                    "generated_at": provmark.record.now_utc(),
                    "operation": "image_generation",
                    "model": {"name": "acme/painter"},
                    "outputs": outputs,
                }
            ]
        )
        records = list(pm.store.iter_records())
        made = create_archive(pm, records, url)
        assert made.records == 4 and made.uri.startswith("memory://")
        verified = verify_in_archive(url, outputs[1]["sha256"])
    assert verified.record_id == rid and verified.record.schema_version == "2"
    assert [c.name for c in verified.checks][:3] == [
        "archive_manifest",
        "archive_file",
        "output_hash",
    ]


def test_unwritable_destination_deletes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with provmark.open(tmp_path / "p.db", home=tmp_path / "home") as pm:
        make(pm, 5)
        with pytest.raises(ConfigError, match="cannot write archive file"):
            create_archive(pm, list(pm.store.iter_records()), str(blocker / "sub"))
        assert pm.store.count() == 5
        assert audit(pm).ok
        assert known_archives(pm) == []


@pytest.mark.parametrize("damage", ["flip_parquet", "drop_parquet", "edit_manifest", "drop_sig"])
def test_corrupted_or_partial_archive_is_refused(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "provmark.db"
    arch = tmp_path / "cold"
    with provmark.open(db, home=tmp_path / "home") as pm:
        texts = make(pm, 6)
        create_archive(pm, list(pm.store.iter_records()), str(arch))
    parquet = next(arch.glob("date=*/*.parquet"))
    manifest = next(arch.glob("_manifests/*.json"))
    if damage == "flip_parquet":
        data = bytearray(parquet.read_bytes())
        data[len(data) // 2] ^= 1
        parquet.write_bytes(bytes(data))
    elif damage == "drop_parquet":
        parquet.unlink()
    elif damage == "edit_manifest":
        manifest.write_text(manifest.read_text().replace('"revision": 1', '"revision": 2'))
    else:
        manifest.with_suffix(".sig").unlink()
    want = "archive_file" if "parquet" in damage else "archive_manifest"
    assert cli(tmp_path, "archive", "--check", str(arch)) == 1
    assert want in capsys.readouterr().err
    answer = tmp_path / "a.txt"
    answer.write_text(texts[0])
    assert main(["verify", str(answer), "--archive", str(arch)]) == 1
    assert want in capsys.readouterr().err
    before = hot_count(db)
    assert cli(tmp_path, "restore", str(arch)) == 1  # nothing restored from a bad archive
    assert hot_count(db) == before


# ---------------------------------------------------------------- retention and holds


def test_retention_with_holds_erasure_and_logged_actions(tmp_path: Path) -> None:
    arch = tmp_path / "cold"
    policy = parse_policy(POLICY.format(to=arch))
    with provmark.open(tmp_path / "p.db", home=tmp_path / "home") as pm:
        make(pm, 6, model="acme/chat", case="none")
        make(pm, 4, model="acme/chat", case="litigation")
        make(pm, 5, model="acme/summarizer")
        pinned = pm.find(model="acme/summarizer", limit=1).records[0].record_id

        with pytest.raises(ConfigError, match="reason"):
            place_hold(pm, tag="case=litigation", reason=" ")
        with pytest.raises(NotFoundError):
            place_hold(pm, record="00000000-0000-7000-8000-000000000000", reason="x")
        by_tag = place_hold(pm, tag="case=litigation", reason="case 42")
        place_hold(pm, record=pinned, reason="regulator request")
        by_subject = place_hold(pm, subject="user-0", reason="DSAR")
        assert len(active_holds(pm.log)) == 3

        soon = datetime.now(UTC) + timedelta(days=31)
        early = plan(pm, policy, now=soon)
        assert len(early.archive) == 4 and not early.erase  # only chat is past 30 days

        p = plan(pm, policy, now=LATER)
        held = {c.record_id for c, _, _ in p.held}
        assert len(p.archive) == 15 - len(held)
        assert len(p.erase) == len([c for c in p.archive if c.rule == "chat"])

        summary = apply(pm, policy, now=LATER)
        assert summary["archived"] == len(p.archive) and summary["erased"] == len(p.erase)
        hot_ids = {r.record_id for r in pm.store.iter_records()}
        assert held <= hot_ids  # held records stay hot
        assert audit_with_archives(pm).report.ok
        ref = known_archives(pm)[0]
        manifest = json.loads((arch / "_manifests" / f"{ref.archive_id}.json").read_text())
        assert manifest["revision"] == 2 and len(manifest["erased"]) == summary["erased"]
        assert all("proof" in t and "leaf_hash" in t for t in manifest["erased"])

        release_hold(pm, by_tag.hold_id, reason="case closed")
        release_hold(pm, by_subject.hold_id, reason="done")
        with pytest.raises(NotFoundError):
            release_hold(pm, by_tag.hold_id, reason="twice")
        again = apply(pm, policy, now=LATER)
        assert again["archived"] >= 1
        assert pinned in {r.record_id for r in pm.store.iter_records()}  # still held

        logged = pm.store.find(Query(model="provmark/governance", limit=100, order="asc"))
        ops = [json.loads(r.payload)["operation"] for r in logged.records]
        assert ops.count("governance.hold") == 3 and ops.count("governance.release") == 2
        assert {"governance.archive", "governance.erase", "governance.retention"} <= set(ops)
        assert audit_with_archives(pm).report.ok


def test_hold_and_retention_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY.format(to=tmp_path / "cold"))
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        make(pm, 4, team="risk")
        make(pm, 3, team="web")
    assert cli(tmp_path, "hold", "add", "--tag", "team=risk", "--reason", "case 7") == 0
    hold_id = capsys.readouterr().out.split()[1]
    assert cli(tmp_path, "hold", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["value"] == "team=risk"
    later = LATER.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli(tmp_path, "retention", "plan", str(policy), "--as-of", later, "--json") == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["to_archive"] == 3 and planned["held"] == 4
    assert cli(tmp_path, "retention", "apply", str(policy), "--as-of", later) == 0
    assert "archived 3, erased 3, held 4" in capsys.readouterr().out
    assert cli(tmp_path, "hold", "release", hold_id, "--reason", "closed") == 0
    assert cli(tmp_path, "hold", "add", "--record", "nope", "--reason", "x") == 2
    assert cli(tmp_path, "archive", "--audit") == 0


# ---------------------------------------------------------------- backup and restore


def test_backup_verify_and_restore_with_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "provmark.db"
    backup = tmp_path / "backup.db"
    with provmark.open(db, home=tmp_path / "home") as pm:
        make(pm, 8)
    assert cli(tmp_path, "backup", "create", str(backup)) == 0
    assert "8 records" in capsys.readouterr().out
    assert main(["backup", "verify", str(backup)]) == 0
    assert cli(tmp_path, "verify", str(backup)) == 0  # the backup action is a record
    capsys.readouterr()
    with provmark.open(db, home=tmp_path / "home") as pm:
        make(pm, 3, model="acme/after")
    assert cli(tmp_path, "backup", "restore", str(backup)) == 2  # exists: needs --force
    assert "--force" in capsys.readouterr().err
    assert cli(tmp_path, "backup", "restore", str(backup), "--force") == 0
    out = capsys.readouterr().out
    assert "audit OK" in out and "kept as" in out
    assert cli(tmp_path, "audit") == 0
    with provmark.open(db, home=tmp_path / "home") as pm:
        assert pm.find(model="acme/after").records == []
    kept = list(tmp_path.glob("provmark.db.pre-restore-*"))
    assert kept and hot_count(kept[0]) == 8 + 1 + 3

    data = bytearray(backup.read_bytes())
    data[-100] ^= 1
    backup.write_bytes(bytes(data))
    assert main(["backup", "verify", str(backup)]) == 1
    assert "differs" in capsys.readouterr().err


def test_restore_refuses_an_archive_of_another_log(tmp_path: Path) -> None:
    arch = tmp_path / "cold"
    with provmark.open(tmp_path / "a.db", home=tmp_path / "home") as pm:
        make(pm, 3)
        create_archive(pm, list(pm.store.iter_records()), str(arch), keep_hot=True)
    with provmark.open(tmp_path / "b.db", home=tmp_path / "home") as pm:
        make(pm, 3)
        with pytest.raises(VerificationError) as info:
            restore_archive(pm, str(arch))
        assert info.value.check == "archive_manifest"
        assert pm.store.count() == 3


# ---------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_governance_on_postgres(tmp_path: Path, pg_url: str) -> None:
    """Holds, archive (rows leave the hot table), audit, verify from the archive, restore."""
    with provmark.open(pg_url, home=tmp_path / "home") as pm:
        texts = make(pm, 5, team="risk")
        hold = place_hold(pm, tag="team=risk", reason="case 9")
        assert [h.hold_id for h in active_holds(pm.log)] == [hold.hold_id]
        records: list[Any] = list(pm.store.iter_records())[:5]
        kept = create_archive(pm, records, str(tmp_path / "copy"), keep_hot=True)
        assert kept.removed_hot == 0 and pm.store.count() == 5 + 1 + 1
        assert create_archive(pm, records, str(tmp_path / "held")).removed_hot == 0  # on hold
        release_hold(pm, hold.hold_id, reason="case closed")
        made = create_archive(pm, records, str(tmp_path / "cold"))
        assert made.removed_hot == 5
        assert pm.store.get(records[2].record_id) is None
        assert audit_with_archives(pm).report.ok  # archived rows count as present
        verified = verify_in_archive(
            str(tmp_path / "cold"), __import__("hashlib").sha256(texts[2].encode()).hexdigest()
        )
        assert verified.index == 2
        restore_archive(pm, str(tmp_path / "cold"))
        assert pm.verify(texts[2]).index == 2
