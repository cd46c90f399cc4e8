"""``provmark audit``: walk the whole store and prove it was not tampered with.

For every row: the signature over its payload holds, its leaf hash equals the
leaf stored in the tree at its index, indexes are contiguous. Then the root
recomputed from the rows equals the root of the latest signed checkpoint, and
every stored checkpoint is consistent with it. Findings name the index, the
record and what is wrong: ``altered``, ``deleted``, ``inserted``, ``reordered``,
``bad_signature``, ``tree`` or ``checkpoint``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .crypto.keys import verify_record_signature
from .errors import VerificationError
from .log.merkle import CompactRange, root_at
from .log.note import open_checkpoint

if TYPE_CHECKING:
    from .client import Provmark


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
    for stored in store.iter_records():
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
    return report


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
