"""Backup and restore of the embedded (SQLite) store.

A backup is a consistent copy taken with SQLite's online backup API while
writers keep going, plus a sidecar ``<file>.json`` with its SHA-256, origin,
tree size and the signed checkpoint it ends at. Taking it is logged as a
``governance.backup`` record whose output hash is the backup file's, so
``provmark verify backup.db`` shows when and where it was made. Restoring
checks the hash, audits a copy (archived rows count as present), and only then
replaces the target, keeping the replaced file. PostgreSQL: see docs/operations.md.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..capture.hashing import hash_file
from ..errors import ConfigError, VerificationError
from ..record import now_utc
from ..store.features import StoreFile
from .ledger import record_action

if TYPE_CHECKING:
    from ..client import Provmark

MEDIA_TYPE = "application/vnd.provmark.backup+json;version=1"


def _store_file(pm: Provmark) -> StoreFile:
    if not isinstance(pm.store, StoreFile):
        raise ConfigError(
            f"{pm.store!r}: `provmark backup` copies the embedded SQLite store; back up "
            "PostgreSQL with pg_dump (docs/operations.md, 'Backup and restore')"
        )
    return pm.store


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def create_backup(
    pm: Provmark, out: str | os.PathLike[str], *, force: bool = False, actor: str | None = None
) -> dict[str, Any]:
    store = _store_file(pm)
    source = store.path
    target = Path(out)
    if target.resolve() == source.resolve():
        raise ConfigError("backup: the output is the store itself")
    if target.exists() and not force:
        raise ConfigError(f"backup: {target} exists", field="force", hint="force overwrites it")
    if not target.parent.is_dir():
        raise ConfigError(f"backup: folder {target.parent} does not exist")
    pm.flush()
    tmp = target.with_name(target.name + ".partial")
    try:
        info = store.backup_to(tmp)  # one self-contained file, taken while writers go on
        os.replace(tmp, target)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"backup to {target} failed: {exc}") from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"backup to {target}: {exc.strerror or exc}") from None
    sha, size = hash_file(target)
    manifest = {
        "media_type": MEDIA_TYPE,
        "file": target.name,
        "sha256": sha,
        "size": size,
        "source": str(source),
        "created_at": now_utc(),
        **info,
    }
    sidecar(target).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    manifest["action_id"] = record_action(
        pm,
        "backup",
        {k: v for k, v in manifest.items() if k not in ("media_type", "checkpoint")},
        actor=actor,
        output={"sha256": sha, "size": size, "media_type": "application/vnd.sqlite3"},
    )
    return manifest


def check_backup(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The backup file matches its sidecar (hash, size); returns the sidecar."""
    file = Path(path)
    side = sidecar(file)
    if not file.is_file():
        raise ConfigError(f"backup: {file}: no such file")
    try:
        manifest = json.loads(side.read_text())
    except OSError:
        raise VerificationError("backup", f"{side} is missing; cannot check the backup") from None
    except ValueError:
        raise VerificationError("backup", f"{side} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("media_type") != MEDIA_TYPE:
        raise VerificationError("backup", f"{side} is not a provmark backup manifest")
    sha, size = hash_file(file)
    if sha != manifest.get("sha256") or size != manifest.get("size"):
        raise VerificationError("backup", f"{file} differs from the backup it was (sha256/size)")
    return manifest


def _audit_copy(
    candidate: Path, home: str | os.PathLike[str] | None, manifest: dict[str, Any]
) -> Any:
    """Audit the copy to restore, then leave it one closed, self-contained file."""
    from ..client import Provmark
    from .archive import audit_with_archives

    with Provmark.open(candidate, home=home) as pm:
        if pm.store.origin != manifest.get("origin"):
            raise VerificationError("backup", "the backup's log origin differs from its sidecar")
        result = audit_with_archives(pm)
    # a backup is older than the live log by nature: losing the newer records is what a
    # restore does (the operator asked); a fork (a different history) still fails it
    result.report.findings = [f for f in result.report.findings if f.kind != "rollback"]
    del pm
    gc.collect()  # parts of a Provmark may hold their own connection until collected
    db = sqlite3.connect(candidate)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()
    return result


def _accept_restored(dest: Path, home: str | os.PathLike[str] | None, origin: str) -> None:
    """This home has seen the log larger than the backup: forget it, or every later open
    would report the restore as a rollback (docs/operations.md)."""
    from ..crypto.keystore import default_home
    from ..log.memory import CheckpointMemory

    CheckpointMemory(Path(home) if home else default_home()).forget(origin, dest)


def restore_backup(
    path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    home: str | os.PathLike[str] | None = None,
    force: bool = False,
    actor: str | None = None,
) -> dict[str, Any]:
    """Check, audit and put a backup in place of ``target``; the old file is kept beside it."""
    from ..client import Provmark

    manifest = check_backup(path)
    dest = Path(target)
    if dest.exists() and not force:
        raise ConfigError(
            f"restore: {dest} exists", field="force", hint="force replaces it (it is kept)"
        )
    if not dest.parent.is_dir():
        raise ConfigError(f"restore: folder {dest.parent} does not exist")
    work = Path(tempfile.mkdtemp(prefix=".provmark-restore-", dir=dest.parent))
    try:
        candidate = work / dest.name
        shutil.copyfile(path, candidate)
        result = _audit_copy(candidate, home, manifest)
        if not result.report.ok:
            raise VerificationError(
                "audit",
                f"the backup does not audit clean ({len(result.report.findings)} problems); "
                f"first: {result.report.findings[0].detail}",
            )
        kept = None
        if dest.exists():
            kept = dest.with_name(
                f"{dest.name}.pre-restore-{hashlib.sha256(os.urandom(8)).hexdigest()[:6]}"
            )
            os.replace(dest, kept)
            for suffix in ("-wal", "-shm"):
                extra = dest.with_name(dest.name + suffix)
                if extra.exists():
                    os.replace(extra, kept.with_name(kept.name + suffix))
        os.replace(candidate, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _accept_restored(dest, home, str(manifest.get("origin")))
    with Provmark.open(dest, home=home) as pm:
        action = record_action(
            pm,
            "restore_backup",
            {"backup": str(path), "sha256": manifest["sha256"], "tree_size": manifest["tree_size"]},
            actor=actor,
        )
    return {
        "restored": str(dest),
        "replaced_file_kept_as": str(kept) if kept else None,
        "records": manifest.get("records"),
        "tree_size": manifest.get("tree_size"),
        "audit": result.to_json(),
        "action_id": action,
    }
