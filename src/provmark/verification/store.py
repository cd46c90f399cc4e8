"""Gather a stored record's evidence and hand it to the one :class:`Verifier`.

Used by ``Provmark.verify``/``verify_digest`` (and so the role views, the CLI, the
server's ``POST /v1/verify`` and the web UI). It picks the candidate records, the
checkpoint to prove against (the newest, or the newest witnessed one when a witness
quorum is required), the consistency proof and the outside evidence; the decision is
the verifier's alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NoManifest, VerificationError
from ..log.merkle import consistency_proof
from ..witness.archive import TrustArchive
from ..witness.policy import StoreHistory, TrustPolicy
from .report import FAIL, CheckResult, Report
from .verifier import Verifier, first_verified

if TYPE_CHECKING:
    from ..log.service import Log

__all__ = ["verify_content", "verify_marked", "verify_stored"]

_PLAIN = TrustPolicy()


def verify_stored(
    log: Log,
    sha256: str | None,
    *,
    record_id: str | None = None,
    trusted_checkpoint: tuple[int, bytes] | None = None,
    policy: TrustPolicy | None = None,
    prechecks: Sequence[CheckResult] = (),
) -> Report:
    """The report for content (by SHA-256) or for a named record (``sha256=None``)."""
    log.settle()
    if any(c.result == FAIL for c in prechecks):  # e.g. a forged C2PA manifest: no record
        return Verifier(None).not_run(None, prechecks=prechecks, content=sha256 is not None)
    revoked = log.revocations()
    if policy is None and not revoked:  # the common case: the base checks alone
        policy = _PLAIN
    else:
        policy = (policy or TrustPolicy()).with_revocations(
            revoked, "revocation list of this key set"
        )
    verifier = Verifier(log.trust(trusted_checkpoint), policy.policies())
    content = sha256 is not None
    planned: dict[str, Any] = {"content": content, "consistency": trusted_checkpoint is not None}
    try:
        if sha256 is None:
            if record_id is None:
                raise VerificationError("record", "give the content or a record id")
            stored = log.store.get(record_id)
            if stored is None:
                raise VerificationError("record", f"no record {record_id!r} in this store")
            candidates = [stored]
        else:
            candidates = log.candidates(sha256, record_id)
        latest = log.store.latest_checkpoint()
        log.require_consistent(latest)  # no rollback since last seen
    except VerificationError as exc:
        about = {"content_sha256": sha256} if sha256 else {}
        return verifier.not_run(exc, prechecks=prechecks, subject=about, **planned)
    archive = TrustArchive.existing(log) if policy.needs_history else None
    try:
        history = StoreHistory(log.store, archive, policy) if archive is not None else None
        reports = []
        for stored in candidates:  # the same output may have been generated more than once
            about = {"record_id": stored.record_id}
            try:
                checkpoint = latest
                if policy.min_witnesses > 0:
                    assert archive is not None
                    checkpoint, _ = policy.witnessed_checkpoint(archive, stored.index)
                ev = log.evidence(stored, checkpoint)
                proof = None
                if trusted_checkpoint is not None and checkpoint is not None:
                    old, new = sorted((trusted_checkpoint[0], checkpoint.size))
                    proof = consistency_proof(old, new, log.store)
            except VerificationError as exc:
                reports.append(verifier.not_run(exc, prechecks=prechecks, subject=about, **planned))
                continue
            reports.append(
                verifier.verify(
                    ev,
                    content_sha256=sha256,
                    consistency_proof=proof,
                    history=history,
                    prechecks=prechecks,
                    subject=about,
                )
            )
            if reports[-1].verified:
                break
        return first_verified(reports)
    finally:
        if archive is not None:
            archive.close()


def load_anchors(trust: Sequence[str | bytes] | str | bytes | None) -> bytes | None:
    """PEM trust anchors from PEM text or file paths (None: no anchor, nothing trusted)."""
    from pathlib import Path

    if trust is None:
        return None
    items = [trust] if isinstance(trust, str | bytes) else list(trust)
    out = b""
    for item in items:
        if isinstance(item, bytes):
            out += item
        elif item.lstrip().startswith("-----BEGIN"):
            out += item.encode()
        else:
            try:
                out += Path(item).read_bytes()
            except OSError as exc:
                from ..errors import ConfigError

                raise ConfigError(f"{item}: {exc.strerror}", field="trust") from None
        if not out.endswith(b"\n"):
            out += b"\n"
    return out or None


def verify_marked(
    log: Log,
    path: Any,
    *,
    sidecar: Any = None,
    trust_anchors: bytes | None = None,
    trusted_checkpoint: tuple[int, bytes] | None = None,
    policy: TrustPolicy | None = None,
) -> tuple[Report, Any]:
    """The report for a file that carries a C2PA manifest (embedded or a sidecar), and the
    manifest as read. :class:`VerificationError` ``c2pa`` when it carries none."""
    from pathlib import Path

    from ..export import c2pa as c2pa_export
    from .c2pa import c2pa_checks

    src = Path(path)
    data = src.read_bytes()
    manifest = c2pa_export.read(src, sidecar=sidecar, trust_anchors=trust_anchors)
    media = c2pa_export.sniff(data[:64]) or "application/octet-stream"

    def stored_record(record_id: str) -> tuple[bytes, bytes] | None:
        found = log.store.get(record_id)
        return (found.payload, found.leaf_hash()) if found is not None else None

    log.settle()
    finding = c2pa_checks(manifest, data, media, stored_record)
    report = verify_stored(
        log,
        finding.content_sha256,
        record_id=finding.record_id,
        trusted_checkpoint=trusted_checkpoint,
        policy=policy,
        prechecks=finding.checks,
    )
    if finding.record_id:
        report.subject.setdefault("record_id", finding.record_id)
    return report, manifest


def verify_content(
    log: Log,
    sha256: str,
    content: Any,
    *,
    record_id: str | None = None,
    trusted_checkpoint: tuple[int, bytes] | None = None,
    policy: TrustPolicy | None = None,
    c2pa_trust: Any = None,
) -> Report:
    """The report for content whose SHA-256 is ``sha256``. A file (``Path``) whose bytes
    are no recorded output but which carries a C2PA manifest (embedded or a ``.c2pa``
    sidecar) is judged by its manifest instead (:func:`verify_marked`)."""
    report = verify_stored(
        log, sha256, record_id=record_id, trusted_checkpoint=trusted_checkpoint, policy=policy
    )
    failed = report.failed
    if report.verified or failed is None or failed.name != "output_hash":
        return report
    if not isinstance(content, Path) or not _may_carry_manifest(content):
        return report
    try:
        marked, _ = verify_marked(
            log,
            content,
            trust_anchors=load_anchors(c2pa_trust),
            trusted_checkpoint=trusted_checkpoint,
            policy=policy,
        )
    except (ImportError, NoManifest):  # no c2pa-python, or no manifest: nothing else to try
        return report
    return marked


def _may_carry_manifest(path: Path) -> bool:
    """An image format that embeds C2PA manifests, or a file with a ``.c2pa`` sidecar."""
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    images = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"GIF8", b"II*\x00", b"MM\x00*")
    return head.startswith(images) or head[4:8] == b"ftyp" or path.with_suffix(".c2pa").exists()
