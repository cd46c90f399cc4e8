"""C2PA never vouches on its own: the checks a marked file must pass before its record's.

A manifest is metadata anyone can write: copying provmark's assertions (record id,
record hash, disclosure) into a manifest signed by someone else, on other pixels, is
easy. So a manifest leads to a record only when one of these holds:

* ``c2pa_binding`` (hard binding): the file with its manifest removed is byte for byte
  the output the record states (PNG ``caBX`` chunks, JPEG APP11 JUMBF segments, WebP
  ``C2PA`` chunks are removed; a sidecar leaves the file as it is);
* ``c2pa_signer``: the manifest's signer chains to a configured trust anchor
  (``--trust``, a key set's ``c2pa_trust_anchors``, the development CA only when asked).

Before that, ``c2pa_record`` checks the manifest's claim against the log (the record
hash is the record's leaf); after it, every check of the record itself runs.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import VerificationError
from ..record import output_hashes
from .report import FAIL, NOT_RUN, PASS, CheckResult

__all__ = ["C2paFinding", "c2pa_checks", "signer_name", "strip_manifest"]

C2PA_CHECKS = ("c2pa_manifest", "c2pa_record", "c2pa_binding")


def _strip_png(data: bytes) -> bytes | None:
    out, i = bytearray(data[:8]), 8
    while i + 12 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        end = i + 12 + length
        if end > len(data):
            return None
        if data[i + 4 : i + 8] != b"caBX":
            out += data[i:end]
        i = end
    return bytes(out) if i == len(data) else None


def _strip_jpeg(data: bytes) -> bytes | None:
    out, i = bytearray(data[:2]), 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            return bytes(out + data[i:])
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        end = i + 2 + length
        if not (marker == 0xEB and b"jumb" in data[i + 4 : min(end, i + 40)]):
            out += data[i:end]
        i = end
    return None


def _strip_webp(data: bytes) -> bytes | None:
    body, i = bytearray(), 12
    while i + 8 <= len(data):
        (length,) = struct.unpack("<I", data[i + 4 : i + 8])
        end = i + 8 + length + (length & 1)
        if data[i : i + 4] != b"C2PA":
            body += data[i:end]
        i = end
    if i != len(data):
        return None
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + bytes(body)


def strip_manifest(data: bytes, media_type: str) -> bytes | None:
    """``data`` without its embedded C2PA manifest (None: a format not handled here)."""
    strip: dict[str, Callable[[bytes], bytes | None]] = {
        "image/png": _strip_png,
        "image/jpeg": _strip_jpeg,
        "image/webp": _strip_webp,
    }
    fn = strip.get(media_type)
    return fn(data) if fn is not None else None


def signer_name(manifest: dict[str, Any]) -> str:
    info = manifest.get("signature_info") or {}
    cn = info.get("common_name") or "an unnamed signer"
    issuer = info.get("issuer")
    return f"{cn!r}" + (f" (issued by {issuer!r})" if issuer else "")


@dataclass
class C2paFinding:
    """The C2PA checks of one file, and what they lead to."""

    checks: list[CheckResult]
    record_id: str | None  # the record the manifest names
    content_sha256: str | None  # the bound content's hash (hard binding), for output_hash
    signer: str

    @property
    def ok(self) -> bool:
        return all(c.result != FAIL for c in self.checks)


def c2pa_checks(
    report: Any,
    data: bytes,
    media_type: str,
    stored_record: Callable[[str], tuple[bytes, bytes] | None],
) -> C2paFinding:
    """Judge a manifest read by :func:`provmark.export.c2pa.read` (with the configured trust
    anchors) for the file ``data``. ``stored_record(id)`` gives that record's (payload,
    leaf hash) from the log, or None."""
    import base64
    import json

    signer = signer_name(report.manifest)
    checks: list[CheckResult] = []

    def fail(name: str, detail: str) -> C2paFinding:
        checks.append(CheckResult(name, FAIL, detail))
        checks.extend(
            CheckResult(n, NOT_RUN, f"not run: {name} failed")
            for n in C2PA_CHECKS[C2PA_CHECKS.index(name) + 1 :]
        )
        return C2paFinding(checks, record_id, None, signer)

    link = report.record or {}
    named = link.get("record_id")
    record_id: str | None = named if isinstance(named, str) and named else None  # as claimed
    where = "embedded" if report.embedded else "in a sidecar"
    if not report.ok:
        codes = ", ".join(f["code"] for f in report.failures) or "no failure code"
        return fail("c2pa_manifest", f"{report.state} C2PA manifest {where} ({codes})")
    checks.append(
        CheckResult("c2pa_manifest", PASS, f"{report.state} C2PA manifest {where}, by {signer}")
    )
    if not record_id:
        return fail("c2pa_record", "the manifest names no provmark record")
    found = stored_record(record_id)
    if found is None:
        return fail("c2pa_record", f"the manifest names record {record_id}, not in this log")
    payload, leaf = found
    if base64.b64encode(leaf).decode() != link.get("record_hash"):
        return fail(
            "c2pa_record",
            f"the manifest's record hash does not match record {record_id} in the log",
        )
    checks.append(
        CheckResult("c2pa_record", PASS, f"names record {record_id}, whose log leaf it matches")
    )
    content = data if report.sidecar is not None else strip_manifest(data, media_type)
    sha = hashlib.sha256(content).hexdigest() if content is not None else None
    bound = sha is not None and sha in output_hashes(json.loads(payload))
    if bound:
        checks.append(
            CheckResult(
                "c2pa_binding",
                PASS,
                f"without its manifest the file is the output of record {record_id} "
                f"(sha256 {sha}): hard binding",
            )
        )
    elif report.trusted:
        checks.append(
            CheckResult(
                "c2pa_binding",
                PASS,
                f"signer {signer} chains to a configured trust anchor; it vouches that this "
                f"file derives from record {record_id} (the content is not a recorded output)",
            )
        )
    else:
        return fail(
            "c2pa_binding",
            f"untrusted signer {signer}: it does not chain to a configured trust anchor "
            f"(trust), and the file without its manifest (sha256 {sha or 'unknown'}) is not "
            f"the output of record {record_id}",
        )
    return C2paFinding(checks, record_id, sha if bound else None, signer)


def raise_for(finding: C2paFinding) -> None:
    failed = next((c for c in finding.checks if c.result == FAIL), None)
    if failed is not None:
        raise VerificationError(failed.name, failed.detail)
