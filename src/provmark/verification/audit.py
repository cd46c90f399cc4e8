"""``provmark audit``: walk the whole store and prove it was not tampered with.

For every row: the signature over its payload holds, its leaf hash equals the
leaf stored in the tree at its index, indexes are contiguous. Then the root
recomputed from the rows equals the root of the latest signed checkpoint, and
every stored checkpoint is consistent with it. Findings name the index, the
record and what is wrong: ``altered``, ``deleted``, ``inserted``, ``reordered``,
``bad_signature``, ``tree`` or ``checkpoint``.

The columns a store indexes (``records.model``, ``generated_at``, ``output_sha256``...,
the ``tags`` and ``outputs`` rows) are not signed: ``log --model`` and ``verify`` look
records up by them, so each must equal what the signed payload says (``index``).
A row that cannot even be read (NULL or non-JSON payload) is ``corrupt``. Last, the
store is compared with what this home has seen of its log (``rollback``, ``fork``,
``replaced``: see :mod:`provmark.log.memory`) and with the checkpoints
witnesses cosigned, when there are any (``witness``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..crypto.keys import verify_record_signature
from ..errors import VerificationError
from ..log.merkle import CompactRange, consistency_proof, root_at, verify_consistency
from ..log.note import open_checkpoint
from ..record import parse_time
from ..store.base import IndexRow, StoredRecord, index_columns

if TYPE_CHECKING:
    from ..client import Provmark


@dataclass(frozen=True)
class Finding:
    kind: str
    index: int | None
    record_id: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "index": self.index,
            "record_id": self.record_id,
            "detail": self.detail,
        }


@dataclass
class AuditReport:
    records: int = 0
    tree_size: int = 0
    checkpoint_size: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "tree_size": self.tree_size,
            "checkpoint_size": self.checkpoint_size,
            "findings": [f.to_json() for f in self.findings],
        }


def audit(
    pm: Provmark, progress: Callable[[int, int], None] | None = None, batch: int = 2000
) -> AuditReport:
    pm.flush()
    store = pm.store
    report = AuditReport(records=store.count(), tree_size=store.tree_size())
    keys = {k.key_id: k for k in pm.public_keys()}
    total = report.tree_size
    leaves = _LeafReader(pm, report.tree_size, batch)
    leaves_by_hash: dict[bytes, int] = {}
    mismatched: list[tuple[int, str, bytes]] = []
    expected = 0
    chunk: list[StoredRecord] = []
    for stored in _iter_records(pm, report):
        chunk.append(stored)
        if len(chunk) >= batch:
            _check_index(pm, chunk, report)
            chunk = []
        _check_signature(stored, keys, report)
        if stored.index >= report.tree_size:
            report.findings.append(
                Finding(
                    "inserted", stored.index, stored.record_id, "row is beyond the end of the log"
                )
            )
            continue
        for missing in range(expected, stored.index):
            report.findings.append(Finding("deleted", missing, None, "no record at this log index"))
        logged = leaves.get(stored.index)
        leaves_by_hash[logged] = stored.index
        leaf = stored.leaf_hash()
        if logged != leaf:
            mismatched.append((stored.index, stored.record_id, leaf))
        expected = stored.index + 1
        if progress and expected % batch == 0:
            progress(expected, total)
    _check_index(pm, chunk, report)
    for missing in range(expected, report.tree_size):
        report.findings.append(Finding("deleted", missing, None, "no record at this log index"))
    for index, record_id, leaf in mismatched:
        elsewhere = leaves_by_hash.get(leaf)
        if elsewhere is not None and elsewhere != index:
            report.findings.append(
                Finding("reordered", index, record_id, f"this row was logged at index {elsewhere}")
            )
        else:
            report.findings.append(
                Finding("altered", index, record_id, "row bytes differ from the logged leaf")
            )
    rng = _check_tree(pm, report, batch)
    if progress:
        progress(total, total)
    _check_checkpoints(pm, report, store.latest_checkpoint(), rng)
    _check_memory(pm, report)
    for left in getattr(pm, "unreplayed", ()):
        report.findings.append(
            Finding(
                "journal",
                None,
                None,
                f"{left.path}: {left.records} acknowledged records of a dead writer are not "
                f"in the store and were not replayed: {left.reason}",
            )
        )
    _check_witnessed(pm, report)
    if report.ok:
        pm.log.remember_checkpoint()
    return report


def _iter_records(pm: Provmark, report: AuditReport) -> Any:
    """The stored rows in log order; a row the store cannot hand out ends the walk with a
    ``corrupt`` finding instead of a traceback."""
    try:
        yield from pm.store.iter_records()
    except Exception as exc:  # a damaged file: sqlite3.DatabaseError, StoreError...
        report.findings.append(Finding("corrupt", None, None, f"rows unreadable: {exc}"))


def _check_index(pm: Provmark, chunk: list[StoredRecord], report: AuditReport) -> None:
    """Every index column of these rows must say what their signed payload says."""
    if not chunk:
        return
    rows = {r.index: r for r in pm.store.index_rows(chunk[0].index, chunk[-1].index + 1)}
    for stored in chunk:
        row = rows.get(stored.index)
        try:
            data = json.loads(stored.payload)
            want = index_columns(data)
            want_id = data["record_id"]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            why = "empty (NULL)" if not stored.payload else f"not a record ({exc!r})"
            report.findings.append(
                Finding("corrupt", stored.index, stored.record_id, f"payload is {why}")
            )
            continue
        if row is None:
            continue
        for problem in _index_differences(row, want, want_id):
            report.findings.append(Finding("index", stored.index, stored.record_id, problem))


def _index_differences(row: IndexRow, want: dict[str, Any], want_id: Any) -> list[str]:
    problems = []
    if row.record_id != want_id:
        problems.append(f"records.record_id is {row.record_id!r}, the payload says {want_id!r}")
    for column, have in row.columns.items():
        expected = want[column]
        if column == "generated_at" and isinstance(have, datetime):  # PostgreSQL timestamptz
            same = _same_instant(have, expected)
        else:
            same = have == expected
        if not same:
            problems.append(f"records.{column} is {have!r}, the signed payload says {expected!r}")
    if row.tags != want["tags"]:
        problems.append(f"tags rows are {row.tags!r}, the signed payload says {want['tags']!r}")
    if set(row.outputs) != set(want["outputs"]):
        problems.append(
            f"outputs rows are {sorted(row.outputs)!r}, "
            f"the signed payload says {sorted(want['outputs'])!r}"
        )
    return problems


def _same_instant(have: datetime, text: Any) -> bool:
    try:
        return parse_time(str(text)) == have
    except ValueError:
        return False


def _check_memory(pm: Provmark, report: AuditReport) -> None:
    for problem in pm.log.checkpoint_problems():
        report.findings.append(Finding(problem.kind, None, None, problem.detail))


def _check_witnessed(pm: Provmark, report: AuditReport) -> None:
    """The largest checkpoint in the witness archive (cosigned copies of the log's
    checkpoints) must be covered by the store's log and consistent with it."""
    from ..witness.archive import archive_path

    path = archive_path(pm.log)
    if not path.exists():
        return  # no witnesses configured for this store: nothing to compare with
    import sqlite3

    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT size, note FROM checkpoints ORDER BY size DESC").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        report.findings.append(Finding("witness", None, None, f"{path}: unreadable ({exc})"))
        return
    if row is None:
        return
    try:
        witnessed, _ = open_checkpoint(row[1], [pm.log_verifier], origin=pm.store.origin)
    except VerificationError as exc:
        report.findings.append(Finding("witness", None, None, f"{path}: {exc.detail}"))
        return
    if witnessed.size > report.tree_size:
        report.findings.append(
            Finding(
                "rollback",
                None,
                None,
                f"witnesses cosigned a checkpoint of {witnessed.size} records, the log has "
                f"{report.tree_size}: {witnessed.size - report.tree_size} confirmed records "
                "are gone",
            )
        )
        return
    latest = pm.store.latest_checkpoint()
    if latest is None:
        return
    try:
        current, _ = open_checkpoint(latest.note, [pm.log_verifier], origin=pm.store.origin)
        proof = consistency_proof(witnessed.size, current.size, pm.store)
        verify_consistency(
            witnessed.size, current.size, witnessed.root_hash, current.root_hash, proof
        )
    except (VerificationError, KeyError) as exc:
        detail = exc.detail if isinstance(exc, VerificationError) else str(exc)
        report.findings.append(
            Finding(
                "fork",
                None,
                None,
                f"the log is not an extension of the checkpoint of {witnessed.size} "
                f"witnesses cosigned: {detail}",
            )
        )


class _LeafReader:
    """Stored leaf hashes, read ``batch`` at a time."""

    def __init__(self, pm: Provmark, size: int, batch: int) -> None:
        self._pm, self._size, self._batch = pm, size, batch
        self._start = -1
        self._chunk: list[bytes] = []

    def get(self, index: int) -> bytes:
        start = index - index % self._batch
        if start != self._start:
            end = min(start + self._batch, self._size)
            self._chunk = _read_nodes(self._pm, [(0, i) for i in range(start, end)])
            self._start = start
        return self._chunk[index - start]


def _read_nodes(pm: Provmark, ids: list[tuple[int, int]]) -> list[bytes]:
    try:
        return pm.store.get_nodes(ids)
    except KeyError:
        return [_one(pm, node) for node in ids]


def _one(pm: Provmark, node: tuple[int, int]) -> bytes:
    try:
        return pm.store.get_nodes([node])[0]
    except KeyError:
        return b""


def _check_signature(stored: Any, keys: dict[str, Any], report: AuditReport) -> None:
    key = keys.get(stored.signature.get("key_id", ""))
    try:
        if key is None:
            raise VerificationError(
                "record_signature", f"unknown key {stored.signature.get('key_id')}"
            )
        verify_record_signature(key, stored.payload, stored.signature.get("sig", ""))
    except VerificationError as exc:
        report.findings.append(Finding("bad_signature", stored.index, stored.record_id, exc.detail))


def _check_tree(pm: Provmark, report: AuditReport, batch: int) -> CompactRange:
    """Rebuild the tree from the stored leaves; every stored inner node must match."""
    rng = CompactRange()
    for start in range(0, report.tree_size, batch):
        ids = [(0, i) for i in range(start, min(start + batch, report.tree_size))]
        hashes = _read_nodes(pm, ids)
        if any(len(h) != 32 for h in hashes):
            report.findings.append(
                Finding("tree", None, None, f"leaf hashes missing in {start}..{start + batch}")
            )
            return rng
        inner = [(node, h) for node, h in rng.extend(hashes) if node[0] > 0]
        stored = _read_nodes(pm, [node for node, _ in inner])
        for (node, h), have in zip(inner, stored, strict=True):
            if h != have:
                report.findings.append(
                    Finding(
                        "tree",
                        None,
                        None,
                        f"Merkle node level {node[0]} index {node[1]} was altered",
                    )
                )
    return rng


def _check_checkpoints(pm: Provmark, report: AuditReport, latest: Any, rng: CompactRange) -> None:
    if latest is None:
        if report.records:
            report.findings.append(Finding("checkpoint", None, None, "records but no checkpoint"))
        return
    report.checkpoint_size = latest.size
    try:
        checkpoint, _ = open_checkpoint(latest.note, [pm.log_verifier], origin=pm.store.origin)
    except VerificationError as exc:
        report.findings.append(
            Finding("checkpoint", None, None, f"latest checkpoint: {exc.detail}")
        )
        return
    if checkpoint.size != report.tree_size:
        report.findings.append(
            Finding(
                "tree",
                None,
                None,
                f"log has {report.tree_size} leaves, checkpoint says {checkpoint.size}",
            )
        )
    if rng.size == checkpoint.size and rng.root() != checkpoint.root_hash:
        report.findings.append(
            Finding(
                "tree",
                None,
                None,
                "root recomputed from the leaves differs from the signed checkpoint",
            )
        )
    try:
        stored_root = root_at(checkpoint.size, pm.store)
    except KeyError as exc:
        report.findings.append(Finding("tree", None, None, f"tree nodes missing: {exc}"))
        return
    if stored_root != checkpoint.root_hash:
        report.findings.append(
            Finding("tree", None, None, "stored tree nodes do not hash to the signed root")
        )
