"""Archive records to Parquet, erase them by policy, restore them, audit with archives.

Order of every destructive step: write the new copy, read it back and verify
it completely (file hashes, each record's signature and inclusion proof, and
the archive's checkpoint against this store's own tree), log the action, and
only then remove the old copy. Held records are never removed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, VerificationError
from ..log.merkle import inclusion_proof
from ..record import now_utc, output_hashes, slug_for
from ..store.base import StoredRecord
from ..verification.audit import AuditReport, audit
from .archive_format import (
    ArchiveCheck,
    Destination,
    Manifest,
    OpenedArchive,
    Pins,
    Progress,
    manifest_rel,
    manifest_statement,
    open_root,
    read_table,
    sig_rel,
    table_bytes,
)
from .hot import hot_table
from .ledger import actions, active_holds, details_of, hold_on, record_action

if TYPE_CHECKING:
    from ..client import Provmark


@dataclass(frozen=True)
class ArchiveResult:
    archive_id: str
    uri: str
    records: int
    removed_hot: int
    kept_hot_held: int
    files: int
    manifest_sha256: str
    action_id: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pins(pm: Provmark) -> Pins:
    return Pins(keys=pm.public_keys(), log_key=pm.log_verifier)


def _open(pm: Provmark, dest: Destination, archive_id: str) -> OpenedArchive:
    return OpenedArchive(dest, archive_id, _pins(pm))


def _write_manifest(pm: Provmark, dest: Destination, manifest: Manifest) -> str:
    from ..log.note import sign_note

    raw = manifest.to_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    statement = manifest_statement(manifest.origin, manifest.archive_id, manifest.revision, sha)
    note = sign_note(statement, pm.store.origin, pm.log.note_signing_key())
    dest.write(sig_rel(manifest.archive_id), note.encode())
    dest.write(manifest_rel(manifest.archive_id), raw)  # last: a manifest means complete
    return sha


def _rows(pm: Provmark, records: Sequence[StoredRecord], size: int) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "index", "record_id", "slug", "generated_at", "model", "operation", "actor",
            "output_sha256", "outputs", "tags", "payload", "signature", "leaf_hash", "proof",
        )
    }  # fmt: skip
    for r in records:
        data = json.loads(r.payload)
        outs = output_hashes(data)
        cols["index"].append(r.index)
        cols["record_id"].append(r.record_id)
        cols["slug"].append(slug_for(r.record_id))
        cols["generated_at"].append(data.get("generated_at"))
        cols["model"].append((data.get("model") or {}).get("name"))
        cols["operation"].append(data.get("operation"))
        cols["actor"].append((data.get("actor") or {}).get("user_id"))
        cols["output_sha256"].append(outs[0] if outs else None)
        cols["outputs"].append(outs)
        cols["tags"].append(json.dumps(data.get("tags") or {}, sort_keys=True))
        cols["payload"].append(r.payload)
        cols["signature"].append(r.signature_json().decode())
        cols["leaf_hash"].append(r.leaf_hash())
        cols["proof"].append(inclusion_proof(r.index, size, pm.store))
    return cols


def create_archive(
    pm: Provmark,
    records: Sequence[StoredRecord],
    to: str,
    *,
    keep_hot: bool = False,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> ArchiveResult:
    """Write ``records`` to a new archive under ``to``, verify it, then drop their hot rows."""
    if not records:
        raise ConfigError("nothing to archive: no records were selected")
    hot = None if keep_hot else hot_table(pm)  # a backend without removal fails before writing
    try:
        pm.flush()
        checkpoint = pm.store.latest_checkpoint()
        records = sorted(records, key=lambda r: r.index)
        if checkpoint is None or checkpoint.size <= records[-1].index:
            raise ConfigError("the newest selected record is not covered by a checkpoint yet")
        dest = Destination(to)
        dest.check_writable()
        archive_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        by_date: dict[str, list[StoredRecord]] = {}
        for r in records:
            day = str(json.loads(r.payload).get("generated_at", ""))[:10] or "unknown"
            by_date.setdefault(day, []).append(r)
        files: list[dict[str, Any]] = []
        done = 0
        total = len(records) * 2
        for day, group in sorted(by_date.items()):
            data = table_bytes(_rows(pm, group, checkpoint.size))
            rel = f"date={day}/{archive_id}.parquet"
            dest.write(rel, data)
            files.append(_file_entry(rel, day, data, [r.index for r in group]))
            done += len(group)
            if progress:
                progress(done, total)
        now = now_utc()
        used = {r.signature.get("key_id") for r in records}
        manifest = Manifest(
            archive_id=archive_id,
            origin=pm.store.origin,
            revision=1,
            created_at=now,
            updated_at=now,
            checkpoint={
                "size": checkpoint.size,
                "root": base64.b64encode(checkpoint.root).decode(),
                "note": checkpoint.note,
            },
            log_key=pm.log_verifier.key_string(),
            keys=[k.to_json() for k in pm.public_keys() if k.key_id in used],
            files=files,
        )
        sha = _write_manifest(pm, dest, manifest)
        check = _open(pm, dest, archive_id).check(
            pm.store, (lambda d, t: progress(len(records) + d, total)) if progress else None
        )
        if check.records != len(records):
            raise VerificationError("archive_file", "the archive lost records on the way")
        removable = list(records)
        held = 0
        if hot is not None:  # a hold placed meanwhile still wins
            holds = active_holds(pm.log)
            removable = [
                r for r in records if hold_on(holds, r.record_id, json.loads(r.payload)) is None
            ]
            held = len(records) - len(removable)
        first, last = records[0].index, records[-1].index
        action = record_action(
            pm,
            "archive",
            {
                "archive_id": archive_id,
                "uri": to,
                "manifest": manifest_rel(archive_id),
                "count": len(records),
                "first_index": first,
                "last_index": last,
                "checkpoint_size": checkpoint.size,
                "hot_removed": hot is not None,
                **(details or {}),
            },
            actor=actor,
            output={
                "sha256": sha,
                "size": len(manifest.to_bytes()),
                "media_type": "application/json",
                "uri": dest.uri(manifest_rel(archive_id)),
            },
        )
        removed = hot.remove(removable) if hot is not None else 0
        return ArchiveResult(
            archive_id=archive_id,
            uri=dest.uri(manifest_rel(archive_id)),
            records=len(records),
            removed_hot=removed,
            kept_hot_held=held,
            files=len(files),
            manifest_sha256=sha,
            action_id=action,
        )
    finally:
        if hot is not None:
            hot.close()


def _file_entry(rel: str, day: str, data: bytes, indexes: Sequence[int]) -> dict[str, Any]:
    return {
        "path": rel,
        "date": day,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "rows": len(indexes),
        "first_index": min(indexes),
        "last_index": max(indexes),
    }


# ---------------------------------------------------------------- what the log knows


@dataclass(frozen=True)
class ArchiveRef:
    archive_id: str
    uri: str  # the archive root
    first_index: int
    last_index: int
    count: int
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def known_archives(pm: Provmark) -> list[ArchiveRef]:
    """Archives this store wrote, from its own governance log."""
    out: list[ArchiveRef] = []
    for stored in actions(pm.log, "archive"):
        d = details_of(stored)
        out.append(
            ArchiveRef(
                archive_id=str(d["archive_id"]),
                uri=str(d["uri"]),
                first_index=int(d["first_index"]),
                last_index=int(d["last_index"]),
                count=int(d["count"]),
                created_at=str(json.loads(stored.payload)["generated_at"]),
            )
        )
    return out


def archived_record_ids(pm: Provmark) -> set[str]:
    ids: set[str] = set()
    for ref in known_archives(pm):
        opened = _open(pm, Destination(ref.uri), ref.archive_id)
        for entry in opened.manifest.files:
            ids.update(r["record_id"] for r in opened.rows(entry, ["record_id"]))
    return ids


# ---------------------------------------------------------------- erase


def erase_from_archive(
    pm: Provmark,
    ref: ArchiveRef,
    indexes: set[int],
    *,
    rules: dict[int, str],
    actor: str | None = None,
) -> int:
    """Remove rows from an archive (a new revision); tombstones keep their leaves provable."""
    dest = Destination(ref.uri)
    opened = _open(pm, dest, ref.archive_id)
    opened.check(pm.store)
    old = opened.manifest
    holds = active_holds(pm.log)
    revision = old.revision + 1
    files: list[dict[str, Any]] = []
    tombstones: list[dict[str, Any]] = []
    now = now_utc()
    for entry in old.files:
        rows = list(opened.rows(entry))
        gone = [
            r
            for r in rows
            if r["index"] in indexes
            and hold_on(holds, r["record_id"], json.loads(r["payload"])) is None
        ]
        if not gone:
            files.append(entry)
            continue
        gone_idx = {int(r["index"]) for r in gone}
        keep = [r for r in rows if int(r["index"]) not in gone_idx]
        tombstones += [
            {
                "index": r["index"],
                "record_id": r["record_id"],
                "leaf_hash": base64.b64encode(r["leaf_hash"]).decode(),
                "proof": [base64.b64encode(p).decode() for p in r["proof"]],
                "erased_at": now,
                "rule": rules.get(r["index"], ""),
            }
            for r in gone
        ]
        if keep:
            data = table_bytes({k: [r[k] for r in keep] for k in keep[0]})
            rel = f"date={entry['date']}/{ref.archive_id}-r{revision}.parquet"
            dest.write(rel, data)
            files.append(
                _file_entry(rel, str(entry["date"]), data, [int(r["index"]) for r in keep])
            )
    if not tombstones:
        return 0
    manifest = Manifest(
        archive_id=old.archive_id,
        origin=old.origin,
        revision=revision,
        created_at=old.created_at,
        updated_at=now,
        checkpoint=old.checkpoint,
        log_key=old.log_key,
        keys=old.keys,
        files=files,
        erased=[*old.erased, *tombstones],
    )
    sha = _write_manifest(pm, dest, manifest)
    _open(pm, dest, ref.archive_id).check(pm.store)
    erased_idx = sorted(int(t["index"]) for t in tombstones)
    record_action(
        pm,
        "erase",
        {
            "archive_id": ref.archive_id,
            "revision": revision,
            "count": len(tombstones),
            "first_index": erased_idx[0],
            "last_index": erased_idx[-1],
            "rules": sorted({str(t["rule"]) for t in tombstones}),
            "record_ids_sha256": hashlib.sha256(
                "\n".join(sorted(str(t["record_id"]) for t in tombstones)).encode()
            ).hexdigest(),
        },
        actor=actor,
        output={"sha256": sha, "media_type": "application/json"},
    )
    referenced = {f["path"] for f in files}
    for rel in dest.files_of(ref.archive_id):
        if rel not in referenced:
            dest.remove(rel)
    return len(tombstones)


# ---------------------------------------------------------------- restore


def restore_archive(
    pm: Provmark,
    path: str,
    *,
    record_ids: Sequence[str] = (),
    actor: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Verify an archive against this store's log, then put its rows back in the hot table."""
    dest, ids = open_root(path)
    wanted = set(record_ids)
    rows: list[StoredRecord] = []
    checks: list[ArchiveCheck] = []
    for archive_id in ids:
        opened = _open(pm, dest, archive_id)
        checks.append(opened.check(pm.store))
        for entry in opened.manifest.files:
            for row in opened.rows(entry):
                if wanted and row["record_id"] not in wanted and row["slug"] not in wanted:
                    continue
                rows.append(
                    StoredRecord(
                        record_id=row["record_id"],
                        payload=row["payload"],
                        signature=json.loads(row["signature"]),
                        index=int(row["index"]),
                    )
                )
    if wanted:
        found = {r.record_id for r in rows} | {slug_for(r.record_id) for r in rows}
        missing = sorted(wanted - found)
        if missing:
            raise ConfigError(f"record: {missing[0]!r} is not in the archive at {path}")
    if not rows:
        raise ConfigError(f"nothing to restore from {path}")
    inserted = 0
    with hot_table(pm) as hot:
        for start in range(0, len(rows), 1000):
            inserted += hot.insert(rows[start : start + 1000])
            if progress:
                progress(min(start + 1000, len(rows)), len(rows))
    action = record_action(
        pm,
        "restore",
        {
            "archives": [c.archive_id for c in checks],
            "uri": path,
            "count": inserted,
            "already_hot": len(rows) - inserted,
            "first_index": min(r.index for r in rows),
            "last_index": max(r.index for r in rows),
        },
        actor=actor,
    )
    return {
        "restored": inserted,
        "already_hot": len(rows) - inserted,
        "archives": [c.to_json() for c in checks],
        "action_id": action,
    }


# ---------------------------------------------------------------- audit


@dataclass
class ArchiveAudit:
    report: AuditReport
    archived: int
    erased: int

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(), "archived": self.archived, "erased": self.erased}


def audit_with_archives(pm: Provmark, progress: Progress | None = None) -> ArchiveAudit:
    """:func:`provmark.verification.audit.audit`, where a row missing from the hot table is
    fine when a verified archive of this store holds it (or its tombstone) with the same
    leaf."""
    report = audit(pm, progress=progress)
    missing = {f.index for f in report.findings if f.kind == "deleted" and f.index is not None}
    covered: dict[int, str] = {}
    if missing:
        for ref in known_archives(pm):
            if not any(ref.first_index <= i <= ref.last_index for i in missing):
                continue
            try:
                opened = _open(pm, Destination(ref.uri), ref.archive_id)
                opened.check(pm.store)
            except VerificationError as exc:
                report.findings.append(_finding(f"archive {ref.archive_id}: {exc}"))
                continue
            for entry in opened.manifest.files:
                for row in opened.rows(entry, ["index"]):
                    covered.setdefault(int(row["index"]), "archived")
            for t in opened.manifest.erased:
                covered.setdefault(int(t["index"]), "erased")
    kept = [f for f in report.findings if not (f.kind == "deleted" and f.index in covered)]
    counts = [covered[i] for i in missing if i in covered]
    report.findings = kept
    return ArchiveAudit(report, counts.count("archived"), counts.count("erased"))


def _finding(detail: str) -> Any:
    from ..verification.audit import Finding

    return Finding("archive", None, None, detail)


def read_index_columns(opened: OpenedArchive) -> list[dict[str, Any]]:
    """index, record_id, generated_at, model, operation, actor, tags of every row."""
    out: list[dict[str, Any]] = []
    cols = ["index", "record_id", "generated_at", "model", "operation", "actor", "tags"]
    for entry in opened.manifest.files:
        data = read_table(opened.read_file(entry), str(entry["path"]), cols)
        for i in range(len(data["index"])):
            row = {c: data[c][i] for c in cols}
            row["payload"] = {
                "record_id": row["record_id"],
                "generated_at": row["generated_at"],
                "model": {"name": row["model"]},
                "operation": row["operation"],
                "actor": {"user_id": row["actor"]},
                "tags": json.loads(row["tags"] or "{}"),
            }
            out.append(row)
    return out


def open_known(pm: Provmark, ref: ArchiveRef) -> OpenedArchive:
    return _open(pm, Destination(ref.uri), ref.archive_id)
