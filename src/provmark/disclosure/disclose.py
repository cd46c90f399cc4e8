"""``disclose``: the fields the law asks for, for any output, with where each comes from.

EU AI Act Art. 50(2) asks that generated content be marked machine-readably as
artificially generated; California SB 942 (as amended by AB 853) asks for a latent
disclosure naming the provider, the system's name and version, the time of creation
and a unique identifier. For a file (text or media, marked or not) or a record id,
:func:`disclose` gathers every source that states one of them:

* the provmark record whose output is the content (or that a manifest names): its
  fields are covered by the record signature and the transparency log;
* a C2PA manifest embedded in the file or in its ``.c2pa`` sidecar: the
  ``dev.provmark.disclosure`` assertion and the ``c2pa.created`` action's
  ``digitalSourceType``, covered by the manifest's signature;
* the store-wide default provider (``disclosure.config``) for records captured
  before it was set: not signed, and reported as such.

The verdict is the verifier's :class:`~provmark.verification.Report`, from
``Provmark.report`` for a file (the checks ``provmark verify`` runs, a marked file judged
by its manifest's hard binding or trusted signer) and ``Provmark.verification`` for a
record id; the manifest's C2PA validation state is shown beside it.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NoManifest, NotFoundError, VerificationError
from ..record import Record
from ..store.base import StoredRecord

if TYPE_CHECKING:
    from ..client import Provmark

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

# field -> what the law calls it
FIELDS: dict[str, str] = {
    "provider": "SB 942: name of the covered provider",
    "system_name": "SB 942: name of the GenAI system",
    "system_version": "SB 942: version of the GenAI system",
    "created_at": "SB 942: time and date of creation",
    "unique_id": "SB 942: unique identifier",
    "ai_generated": "EU AI Act Art. 50(2) / SB 942: detectable as AI-generated "
    "(IPTC digitalSourceType trainedAlgorithmicMedia)",
}
SB942 = ("provider", "system_name", "system_version", "created_at", "unique_id")


@dataclass(frozen=True)
class Source:
    """One place that states a field's value."""

    value: Any
    where: str  # e.g. "record model.provider", "C2PA manifest (embedded) dev.provmark.disclosure"
    signed: bool  # covered by a signature (the record's, or the manifest's claim signature)
    signer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "where": self.where,
            "signed": self.signed,
            "signer": self.signer,
        }


@dataclass(frozen=True)
class FieldValue:
    name: str
    sources: list[Source]

    @property
    def value(self) -> Any:
        return self.sources[0].value if self.sources else None

    @property
    def signed(self) -> bool:
        return any(s.signed for s in self.sources)

    @property
    def agree(self) -> bool:
        return len({repr(s.value) for s in self.sources}) <= 1

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "law": FIELDS[self.name],
            "value": self.value,
            "present": bool(self.sources),
            "signed": self.signed,
            "sources_agree": self.agree,
            "sources": [s.to_json() for s in self.sources],
        }


@dataclass
class Verdict:
    """``verified`` (record checks pass, and the manifest if any is valid), ``not_verified``
    (a check failed: ``failed_check``, ``reason``) or ``no_record`` (nothing here states
    this content; a manifest may still be valid)."""

    status: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    failed_check: str | None = None
    reason: str | None = None
    c2pa_state: str | None = None
    c2pa_failures: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "verified": self.status == "verified",
            "failed_check": self.failed_check,
            "reason": self.reason,
            "checks": self.checks,
            "c2pa_state": self.c2pa_state,
            "c2pa_failures": self.c2pa_failures,
        }


@dataclass
class Disclosure:
    subject: str
    content_sha256: str | None
    media_type: str | None
    marking: str  # c2pa-embedded | c2pa-sidecar | none
    record_id: str | None
    slug: str | None
    fields: list[FieldValue]
    verdict: Verdict

    def field(self, name: str) -> FieldValue:
        return next(f for f in self.fields if f.name == name)

    @property
    def complete(self) -> bool:
        """Every SB 942 field present and signed, and marked as AI-generated."""
        return all(self.field(n).sources and self.field(n).signed for n in (*SB942, "ai_generated"))

    @property
    def missing(self) -> list[str]:
        return [f.name for f in self.fields if not f.sources]

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "content_sha256": self.content_sha256,
            "media_type": self.media_type,
            "marking": self.marking,
            "record_id": self.record_id,
            "slug": self.slug,
            "complete": self.complete,
            "missing": self.missing,
            "fields": [f.to_json() for f in self.fields],
            "verdict": self.verdict.to_json(),
        }


# ---------------------------------------------------------------- sources


def record_sources(record: Record, key_id: str | None) -> dict[str, list[Source]]:
    """What a signed record states for each field."""
    signer = f"provmark records key {key_id}" if key_id else None

    def src(value: Any, where: str) -> list[Source]:
        return [Source(value, f"record {where}", True, signer)] if value not in (None, "") else []

    m = record.model
    version = src(m.version, "model.version") or src(m.revision, "model.revision")
    ai = src(DIGITAL_SOURCE_TYPE, f"operation {record.operation} by model {m.name}")
    return {
        "provider": src(m.provider, "model.provider"),
        "system_name": src(m.name, "model.name"),
        "system_version": version,
        "created_at": src(record.generated_at, "generated_at"),
        "unique_id": src(record.record_id, "record_id"),
        "ai_generated": ai if record.status == "ok" else [],
    }


def manifest_sources(report: Any) -> dict[str, list[Source]]:
    """What a C2PA manifest (``export.c2pa.Report``) states for each field."""
    where = "C2PA manifest (embedded)" if report.embedded else f"C2PA sidecar {report.sidecar}"
    info = report.manifest.get("signature_info", {}) or {}
    signer = info.get("common_name") or info.get("issuer")
    signed = report.ok
    d = report.disclosure or {}
    out: dict[str, list[Source]] = {name: [] for name in FIELDS}
    for name in SB942:
        if d.get(name) not in (None, ""):
            out[name].append(
                Source(d[name], f"{where} dev.provmark.disclosure.{name}", signed, signer)
            )
    for action in report.actions:
        dst = action.get("digitalSourceType")
        if dst:
            out["ai_generated"].append(
                Source(
                    dst, f"{where} action {action.get('action')} digitalSourceType", signed, signer
                )
            )
            break
    return out


def _merge(*parts: dict[str, list[Source]]) -> list[FieldValue]:
    return [FieldValue(name, [s for part in parts for s in part.get(name, [])]) for name in FIELDS]


def _fill_provider(fields: list[FieldValue], provider: str | None) -> list[FieldValue]:
    """The store's default provider for a record captured without one: not signed."""
    if not provider:
        return fields
    return [
        FieldValue(
            f.name,
            [Source(provider, "store default provider (config; not in the record)", False)],
        )
        if f.name == "provider" and not f.sources
        else f
        for f in fields
    ]


# ---------------------------------------------------------------- verification


def verdict_of(report: Any, *, has_manifest: bool = False) -> Verdict:
    """The verifier's :class:`~provmark.verification.Report` as a disclosure verdict."""
    checks = [c.to_json() for c in report.checks]
    if report.verified:
        return Verdict("verified", checks)
    failed = report.failed
    check, reason = (failed.name, failed.detail) if failed else ("record", "nothing verified")
    if check == "output_hash" and not has_manifest and not report.subject.get("record_id"):
        return Verdict("no_record", checks, check, reason)
    return Verdict("not_verified", checks, check, reason)


def _record_of(pm: Provmark, report: Any, manifest: Any, sha: str) -> StoredRecord | None:
    """The record the verdict is about: the verified one, the one named by the report or
    the manifest, else the newest stating these bytes."""
    if report.outcome is not None:
        return pm.store.get(report.outcome.record_id)
    named = report.subject.get("record_id") or (
        (manifest.record or {}).get("record_id") if manifest else None
    )
    if named:
        return pm.store.get(str(named))
    found = pm.store.by_output(sha)
    return max(found, key=lambda s: s.index) if found else None


# ---------------------------------------------------------------- entry points


def disclose_record(pm: Provmark, record_id: str) -> Disclosure:
    """The disclosure of a record (by id or slug) and the verdict on it."""
    pm.flush()
    stored = pm.store.get(record_id)
    if stored is None:
        raise NotFoundError(f"no record {record_id!r}")
    rec = stored.record()
    verdict = verdict_of(pm.verification(None, record_id=stored.record_id))
    fields = _fill_provider(
        _merge(record_sources(rec, stored.signature.get("key_id"))), pm_provider(pm)
    )
    out = rec.output
    return Disclosure(
        subject=rec.slug,
        content_sha256=out.sha256 if out else None,
        media_type=out.media_type if out else None,
        marking="none",
        record_id=rec.record_id,
        slug=rec.slug,
        fields=fields,
        verdict=verdict,
    )


def pm_provider(pm: Any) -> str | None:
    drafts = getattr(pm, "_drafts", None)
    return getattr(drafts, "provider", None)


def _read_manifest(path: Path, trust_anchors: Any) -> Any:
    """The C2PA report of an embedded or sidecar manifest; None when there is none."""
    import c2pa

    from ..export.c2pa import read, sidecar_for, sniff

    with open(path, "rb") as fh:
        head = fh.read(64)
    guessed = mimetypes.guess_type(path.name)[0]
    embeddable = sniff(head) is not None or guessed in c2pa.Reader.get_supported_mime_types()
    if not embeddable and not sidecar_for(path).exists():
        return None  # text and other formats C2PA cannot embed into, without a sidecar
    try:
        return read(path, trust_anchors=trust_anchors)
    except NoManifest:
        return None


def disclose_file(
    pm: Provmark,
    path: str | os.PathLike[str],
    *,
    trust_anchors: str | bytes | os.PathLike[str] | None = None,
    media_type: str | None = None,
) -> Disclosure:
    """The disclosure of a file: its manifest (embedded or sidecar), the record of its
    bytes (or the record its manifest names) and the verdict on both."""
    from ..capture.hashing import hash_file, sniff_media_type

    src = Path(path)
    if not src.is_file():
        raise ConfigError(f"{src}: no such file")
    pm.flush()
    sha, _ = hash_file(src)
    with open(src, "rb") as fh:
        head = fh.read(16)
    media = media_type or sniff_media_type(head) or mimetypes.guess_type(src.name)[0]
    try:
        manifest = _read_manifest(src, trust_anchors)
    except VerificationError:  # unreadable: the verifier's c2pa check says why
        manifest = None
    # the one verdict: the bytes as a recorded output, else the manifest's binding/signer
    report = pm.report(src, c2pa_trust=trust_anchors)
    verdict = verdict_of(report, has_manifest=manifest is not None)
    stored = _record_of(pm, report, manifest, sha)
    parts = []
    if stored is not None:
        parts.append(record_sources(stored.record(), stored.signature.get("key_id")))
    if manifest is not None:
        parts.append(manifest_sources(manifest))
        verdict.c2pa_state = manifest.state
        verdict.c2pa_failures = [
            f
            for f in manifest.failures
            if f["code"] != "signingCredential.untrusted" or not manifest.ok
        ]
    fields = _merge(*parts)
    if stored is not None:
        fields = _fill_provider(fields, pm_provider(pm))
    marking = (
        "none" if manifest is None else ("c2pa-embedded" if manifest.embedded else "c2pa-sidecar")
    )
    rec = stored.record() if stored is not None else None
    return Disclosure(
        subject=src.name,
        content_sha256=sha,
        media_type=media,
        marking=marking,
        record_id=rec.record_id if rec else None,
        slug=rec.slug if rec else None,
        fields=fields,
        verdict=verdict,
    )


def disclose(
    pm: Provmark,
    target: str | os.PathLike[str],
    *,
    trust_anchors: str | bytes | os.PathLike[str] | None = None,
) -> Disclosure:
    """:func:`disclose_file` for an existing file, else :func:`disclose_record` for an id/slug."""
    if Path(target).is_file():
        return disclose_file(pm, target, trust_anchors=trust_anchors)
    from ..record import is_record_id, is_slug

    text = os.fspath(target)
    if is_record_id(text) or is_slug(text):
        return disclose_record(pm, text)
    raise ConfigError(f"{text}: neither a file nor a record id or slug")


def disclose_bytes(
    pm: Provmark,
    content: bytes,
    *,
    name: str = "content",
    trust_anchors: str | bytes | os.PathLike[str] | None = None,
) -> Disclosure:
    """:func:`disclose_file` of content in memory (what the server receives)."""
    import tempfile

    safe = Path(name).name or "content"
    with tempfile.TemporaryDirectory(prefix="provmark-disclose-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(content)
        return disclose_file(pm, path, trust_anchors=trust_anchors)
