"""C2PA manifests for AI outputs, via c2pa-python: mark media, read manifests back.

:func:`mark` embeds a signed manifest in PNG, JPEG, WebP (and GIF, TIFF, AVIF,
HEIF and the other formats c2pa can embed into) with:

* a ``c2pa.actions.v2`` assertion: ``c2pa.created``, ``digitalSourceType``
  trainedAlgorithmicMedia, ``softwareAgent`` = the model, ``when`` = creation time;
* ``dev.provmark.disclosure``: the California SB 942 latent-disclosure fields
  (provider, system name and version, creation time, unique identifier);
* ``dev.provmark.record``: record id, record hash (the RFC 9162 leaf hash of the
  signed record), log index and key id, to look the record up and verify it.

Text and formats c2pa cannot embed into get a sidecar ``.c2pa`` manifest bound to
the content by hash. An asset that already carries a manifest becomes the parent
ingredient of the new one (``c2pa.opened`` + ``c2pa.edited``), never overwritten.
:func:`read` reports the validation state (Invalid / Valid / Trusted) and failures.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import c2pa

from ..capture.hashing import sniff_media_type
from ..errors import ConfigError, NoManifest, ProvmarkError, RecordError, VerificationError
from ..record import Record
from ..store.base import StoredRecord
from .c2pa_certs import load_signing_material

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
RECORD_LABEL = "dev.provmark.record"
DISCLOSURE_LABEL = "dev.provmark.disclosure"
SIDECAR_SUFFIX = ".c2pa"
_ALGS: Mapping[str, c2pa.C2paSigningAlg] = MappingProxyType(
    {
        "ES256": c2pa.C2paSigningAlg.ES256,
        "ES384": c2pa.C2paSigningAlg.ES384,
        "ES512": c2pa.C2paSigningAlg.ES512,
        "PS256": c2pa.C2paSigningAlg.PS256,
        "Ed25519": c2pa.C2paSigningAlg.ED25519,
    }
)


@dataclass(frozen=True)
class Marked:
    """What :func:`mark` wrote."""

    path: Path  # the asset (with the manifest embedded, or a copy beside its sidecar)
    sidecar: Path | None  # the .c2pa manifest when not embedded
    media_type: str
    parent_manifest: bool  # the input already had a manifest, now an ingredient
    manifest_bytes: int


@dataclass(frozen=True)
class Report:
    """A manifest read back: its validation state and what provmark put in it."""

    state: str  # "Invalid" | "Valid" | "Trusted"
    embedded: bool
    sidecar: Path | None
    failures: list[dict[str, str]]
    manifest: dict[str, Any]
    record: dict[str, Any] | None
    disclosure: dict[str, Any] | None
    ingredients: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Intact and validly signed (``Valid``), perhaps also ``Trusted``.

        A ``Valid`` manifest may still list ``signingCredential.untrusted``: the
        signer is not among the trust anchors given (or none were given).
        """
        return self.state in ("Valid", "Trusted")

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"

    @property
    def actions(self) -> list[dict[str, Any]]:
        for a in self.manifest.get("assertions", []):
            if str(a.get("label", "")).startswith("c2pa.actions"):
                return list(a.get("data", {}).get("actions", []))
        return []

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "ok": self.ok,
            "trusted": self.trusted,
            "embedded": self.embedded,
            "sidecar": str(self.sidecar) if self.sidecar else None,
            "failures": self.failures,
            "signer": self.manifest.get("signature_info", {}),
            "claim_generator": self.manifest.get("claim_generator_info", []),
            "actions": self.actions,
            "record": self.record,
            "disclosure": self.disclosure,
            "ingredients": self.ingredients,
        }


# ---------------------------------------------------------------- formats


def sniff(head: bytes) -> str | None:
    """The image media type from the first bytes (the formats C2PA embeds in), or None."""
    found = sniff_media_type(head)
    return found if found is not None and found.startswith("image/") else None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a character cut at the end of the sample
    return True


def media_kind(path: Path, head: bytes) -> tuple[str, bool]:
    """(media type, embeddable) for an asset; :class:`ConfigError` when C2PA cannot carry it."""
    found = sniff(head)
    if found:
        return found, True
    guessed = mimetypes.guess_type(path.name)[0] or ""
    supported = c2pa.Builder.get_supported_mime_types()
    if guessed and not guessed.startswith(("text/", "image/")) and guessed in supported:
        return guessed, True
    if _looks_like_text(head):
        return (guessed if guessed.startswith("text/") else "text/plain"), False
    raise ConfigError(
        f"{path}: not an image C2PA can embed into (PNG, JPEG, WebP, GIF, TIFF, AVIF, HEIF), "
        "nor text or another format c2pa supports"
    )


def sidecar_for(path: str | os.PathLike[str]) -> Path:
    """Where the sidecar manifest of ``path`` lives: the same name with ``.c2pa``."""
    return Path(path).with_suffix(SIDECAR_SUFFIX)


# ---------------------------------------------------------------- the manifest


def disclosure(record: Record, provider: str | None = None) -> dict[str, Any]:
    """SB 942 latent disclosure: provider, system name and version, time, unique id."""
    who = provider or record.model.provider
    if not who:
        raise RecordError(
            "model.provider", "the SB 942 disclosure needs the provider's name: pass provider=..."
        )
    version = record.model.version or record.model.revision
    if not version:
        raise RecordError("model.version", "the SB 942 disclosure needs the system's version")
    return {
        "ai_generated": True,
        "provider": who,
        "system_name": record.model.name,
        "system_version": version,
        "created_at": record.generated_at,
        "unique_id": record.record_id,
    }


def record_assertion(record: Record) -> dict[str, Any]:
    """The provmark record link: id, record hash (log leaf hash), log index, key id."""
    if record.log is None or record.signature is None:
        raise RecordError("log", f"record {record.record_id} is not signed and logged yet")
    data: dict[str, Any] = {
        "record_id": record.record_id,
        "slug": record.slug,
        "record_hash": record.log.leaf_hash,
        "record_hash_alg": "rfc9162-leaf-sha256",
        "log_index": record.log.index,
        "key_id": record.signature.key_id,
    }
    if record.output is not None:
        data["output_sha256"] = record.output.sha256
    return data


def manifest_definition(
    record: Record,
    *,
    title: str,
    provider: str | None = None,
    has_parent: bool = False,
    soft_binding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from .._version import __version__

    agent = {"name": record.model.name}
    if record.model.version:
        agent["version"] = record.model.version
    if has_parent:
        actions = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": ["c2pa.ingredient.v3"]}},
            {
                "action": "c2pa.edited",
                "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": agent,
                "when": record.generated_at,
            },
        ]
    else:
        actions = [
            {
                "action": "c2pa.created",
                "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": agent,
                "when": record.generated_at,
            }
        ]
    assertions = [
        {"label": "c2pa.actions.v2", "data": {"actions": actions}},
        {"label": DISCLOSURE_LABEL, "data": disclosure(record, provider)},
        {"label": RECORD_LABEL, "data": record_assertion(record)},
    ]
    if soft_binding is not None:  # perceptual hash: finds the record after metadata is stripped
        assertions.append(soft_binding)
    return {
        "claim_generator_info": [{"name": "provmark", "version": __version__}],
        "title": title,
        "assertions": assertions,
    }


def _soft_binding(data: bytes, media: str) -> dict[str, Any] | None:
    try:
        from ..softbind import soft_binding_assertion
    except ImportError:  # numpy/Pillow not installed: no soft binding
        return None
    try:
        found: dict[str, Any] | None = soft_binding_assertion(data, media)
    except ProvmarkError:  # a format it cannot fingerprint
        return None
    return found


# ---------------------------------------------------------------- mark


def mark(
    image_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    record: Record | StoredRecord,
    signer_cert_chain: str | bytes | os.PathLike[str],
    key: str | bytes | os.PathLike[str],
    *,
    provider: str | None = None,
    sidecar: bool | None = None,
    check_output: bool = True,
) -> Marked:
    """Sign a C2PA manifest for ``record`` into a copy of ``image_path`` at ``out_path``.

    ``sidecar=None`` embeds when the format allows and writes ``<out>.c2pa``
    otherwise; ``True`` always writes a sidecar. With ``check_output`` the
    asset's SHA-256 must be the record's output hash.
    """
    rec = record.record() if isinstance(record, StoredRecord) else record
    src, dst = Path(image_path), Path(out_path)
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{src}: {exc.strerror}") from None
    media, embeddable = media_kind(src, data[:4096])
    if check_output:
        sha = hashlib.sha256(data).hexdigest()
        if rec.output is None or rec.output.sha256 != sha:
            raise RecordError(
                "output.sha256",
                f"{src} (sha256 {sha[:16]}...) is not the output of record {rec.record_id}",
            )
    material = load_signing_material(signer_cert_chain, key)
    use_sidecar = (not embeddable) if sidecar is None else sidecar
    parent = embeddable and _has_manifest(media, data)
    definition = manifest_definition(
        rec,
        title=dst.name,
        provider=provider,
        has_parent=parent,
        soft_binding=_soft_binding(data, media),
    )
    settings = {"builder": {"thumbnail": {"enabled": False}}}
    try:
        with (
            c2pa.Context.from_dict(settings) as ctx,
            c2pa.Builder(definition, context=ctx) as builder,
        ):
            if use_sidecar:
                builder.set_no_embed()
            if parent:
                builder.add_ingredient(
                    {"title": src.name, "relationship": "parentOf", "label": "c2pa.ingredient.v3"},
                    media,
                    io.BytesIO(data),
                )
            info = c2pa.C2paSignerInfo(
                _ALGS[material.alg], material.chain_pem, material.key_pem, None
            )
            with c2pa.Signer.from_info(info) as signer:
                out = io.BytesIO()
                manifest = builder.sign(signer, media, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        raise ProvmarkError(f"C2PA signing of {src} failed: {exc}") from None
    side = sidecar_for(dst) if use_sidecar else None
    _write_atomic(dst, out.getvalue() if not use_sidecar else data)
    if side is not None:
        _write_atomic(side, manifest)
    return Marked(dst, side, media, parent, len(manifest))


def _has_manifest(media: str, data: bytes) -> bool:
    try:
        reader = c2pa.Reader.try_create(media, io.BytesIO(data))
    except c2pa.C2paError:
        return False
    if reader is None:
        return False
    reader.close()
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- read


def read(
    path: str | os.PathLike[str],
    *,
    sidecar: str | os.PathLike[str] | None = None,
    trust_anchors: str | bytes | os.PathLike[str] | None = None,
) -> Report:
    """Read and validate the manifest of ``path`` (embedded, else its sidecar).

    With ``trust_anchors`` (CA certificates, PEM) a good manifest is ``Trusted``;
    without, ``Valid``. Tampering shows as ``Invalid`` with failure codes such as
    ``assertion.dataHash.mismatch``. :class:`VerificationError` ``c2pa`` when
    there is no manifest at all.
    """
    src = Path(path)
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{src}: {exc.strerror}") from None
    found = sniff(data[:64])
    media = found or mimetypes.guess_type(src.name)[0] or "application/octet-stream"
    settings: dict[str, Any] = {}
    if trust_anchors is not None:
        anchors = trust_anchors
        if not isinstance(anchors, bytes) and not str(anchors).lstrip().startswith("-----BEGIN"):
            anchors = Path(anchors).read_bytes()
        pem = anchors.decode() if isinstance(anchors, bytes) else str(anchors)
        settings = {"verify": {"verify_trust": True}, "trust": {"user_anchors": pem}}
    side = Path(sidecar) if sidecar is not None else None
    manifest_data = None
    if side is None and found is None and sidecar_for(src).exists():
        side = sidecar_for(src)
    try:
        with c2pa.Context.from_dict(settings) as ctx:
            reader = None
            if side is None:
                reader = c2pa.Reader.try_create(media, io.BytesIO(data), None, ctx)
                if reader is None and sidecar_for(src).exists():
                    side = sidecar_for(src)
            if reader is None:
                if side is None:
                    raise NoManifest(f"{src} carries no C2PA manifest and has no sidecar")
                manifest_data = side.read_bytes()
                reader = c2pa.Reader(media, io.BytesIO(data), manifest_data, ctx)
            with reader:
                store = json.loads(reader.json())
                state = reader.get_validation_state() or "Invalid"
                results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        raise VerificationError("c2pa", f"{src}: the manifest cannot be read: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{side}: {exc.strerror}") from None
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    failures = [
        {"code": f.get("code", ""), "explanation": f.get("explanation", "")}
        for f in results.get("activeManifest", {}).get("failure", [])
    ]
    assertions = {a.get("label"): a.get("data") for a in active.get("assertions", [])}
    ingredients = [
        {
            "title": i.get("title"),
            "relationship": i.get("relationship"),
            "manifest": i.get("active_manifest"),
        }
        for i in active.get("ingredients", [])
    ]
    return Report(
        state=state,
        embedded=manifest_data is None,
        sidecar=side if manifest_data is not None else None,
        failures=failures,
        manifest=active,
        record=assertions.get(RECORD_LABEL),
        disclosure=assertions.get(DISCLOSURE_LABEL),
        ingredients=ingredients,
    )


def verify(
    path: str | os.PathLike[str],
    *,
    sidecar: str | os.PathLike[str] | None = None,
    trust_anchors: str | bytes | os.PathLike[str] | None = None,
) -> Report:
    """:func:`read`, raising ``VerificationError("c2pa", ...)`` unless the manifest is
    ``Valid``, or ``Trusted`` when ``trust_anchors`` are given."""
    report = read(path, sidecar=sidecar, trust_anchors=trust_anchors)
    if not report.ok or (trust_anchors is not None and not report.trusted):
        codes = ", ".join(f["code"] for f in report.failures) or "no failure code"
        raise VerificationError("c2pa", f"{path}: manifest is {report.state} ({codes})")
    return report


def check_record(report: Report, pm: Any) -> Any:
    """Verify the record a manifest names against a provmark store (a ``Provmark``).

    The record must exist, its log leaf hash must equal the manifest's record
    hash, and it must pass the full record verification (signature, key window,
    inclusion in a signed checkpoint, revocation). Returns
    :class:`provmark.verify.Verified`; raises :class:`VerificationError`
    (``c2pa_record`` or the failed check).

    This checks the manifest's *claim*, not the file: it says nothing about whether
    the file is that record's output. To verify a marked file use ``pm.verify(path)``
    / ``pm.report(path)`` (hard binding, or a signer chaining to a trust anchor).
    """
    import base64

    link = report.record or {}
    record_id = link.get("record_id")
    if not record_id:
        raise VerificationError("c2pa_record", "the manifest names no provmark record")
    pm.flush()
    stored = pm.store.get(record_id)
    if stored is None:
        raise VerificationError("c2pa_record", f"record {record_id} is not in this store")
    leaf = base64.b64encode(stored.leaf_hash()).decode()
    if leaf != link.get("record_hash"):
        raise VerificationError(
            "c2pa_record",
            f"the manifest's record hash does not match record {record_id} in the log",
        )
    return pm.verification(None, record_id=stored.record_id).raise_for_failure()
