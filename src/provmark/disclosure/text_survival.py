"""What survives copy and paste of marked text: a measurement, not a marking method.

provmark marks text with a sidecar C2PA manifest (``<name>.c2pa``) bound to the exact
bytes, plus the signed record found by the text's SHA-256, plus (with
``fingerprint=True``) a soft-binding fingerprint that finds edited copies. The C2PA
2.x specification also defines embedding a manifest *in* unstructured text: the
``C2PATextManifestWrapper`` (magic ``C2PATXT\\0``, version, length, the JUMBF manifest
store) written after U+FEFF as Unicode variation selectors (byte b -> U+FE00 + b for
b < 16, else U+E0100 + b - 16), with a ``c2pa.hash.data`` hard binding that excludes the
wrapper. c2pa-python 0.38 can neither write nor read that (no ``text/*`` among its
supported formats, no data-hashed placeholder API), so provmark does not ship it: it
could not be validated by the C2PA library. :func:`vs_encode` / :func:`vs_decode` here
encode the wrapper's byte layout only to measure whether such a carrier would survive
the same transformations; the result is in ``docs/standards.md``.

:data:`TRANSFORMS` are the changes text typically suffers when copied between
programs; :func:`survival` applies each and reports, per transformation, whether the
sidecar manifest still validates, whether the exact record is still found, what soft
binding finds, and whether a variation-selector carrier is still intact.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"C2PATXT\x00"
VERSION = 1
ZWNBSP = "\ufeff"
_VS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def vs_encode(data: bytes) -> str:
    """Bytes as variation selectors (the C2PA text wrapper's encoding)."""
    return "".join(chr(0xFE00 + b) if b < 16 else chr(0xE0100 + b - 16) for b in data)


def vs_decode(text: str) -> bytes:
    """The bytes carried by the variation selectors of ``text`` (others ignored)."""
    out = bytearray()
    for ch in text:
        cp = ord(ch)
        if 0xFE00 <= cp <= 0xFE0F:
            out.append(cp - 0xFE00)
        elif 0xE0100 <= cp <= 0xE01EF:
            out.append(cp - 0xE0100 + 16)
    return bytes(out)


def wrapper(manifest: bytes) -> str:
    """U+FEFF + the wrapper's bytes (magic, version, big-endian length, manifest) as VS."""
    body = MAGIC + bytes([VERSION]) + len(manifest).to_bytes(4, "big") + manifest
    return ZWNBSP + vs_encode(body)


def carried(text: str) -> bytes | None:
    """The manifest a wrapper in ``text`` carries, or None when it is gone or damaged."""
    data = vs_decode(text)
    start = data.find(MAGIC)
    if start < 0 or len(data) < start + 13:
        return None
    length = int.from_bytes(data[start + 9 : start + 13], "big")
    body = data[start + 13 : start + 13 + length]
    return body if len(body) == length else None


def _collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "unchanged": lambda t: t,
    "trailing newline added": lambda t: t + "\n",
    "CRLF line ends": lambda t: t.replace("\n", "\r\n"),
    "whitespace collapsed": _collapse_whitespace,
    "NFC": lambda t: unicodedata.normalize("NFC", t),
    "NFKC": lambda t: unicodedata.normalize("NFKC", t),
    "non-breaking spaces (HTML copy)": lambda t: t.replace(" ", "\u00a0"),
    "variation selectors stripped": lambda t: _VS.sub("", t),
    "format characters stripped (U+FEFF, Cf)": lambda t: "".join(
        c for c in t if unicodedata.category(c) != "Cf"
    ),
    "first sentence quoted": lambda t: t.split(". ")[0] + ".",
}


@dataclass(frozen=True)
class Survival:
    transform: str
    sidecar_manifest: str  # Valid / Invalid (the hard binding over the exact bytes)
    exact_record: bool  # provmark verify by SHA-256 still finds the record
    soft_binding: str  # identical / derived / no_match / too_short
    vs_carrier: bool  # a variation-selector wrapper appended to the text is intact

    def to_json(self) -> dict[str, Any]:
        return {
            "transform": self.transform,
            "sidecar_manifest": self.sidecar_manifest,
            "exact_record": self.exact_record,
            "soft_binding": self.soft_binding,
            "vs_carrier": self.vs_carrier,
        }


def survival(pm: Any, marked: Path, sidecar: Path, workdir: Path) -> list[Survival]:
    """Apply every transformation to the marked text ``marked`` (its manifest in
    ``sidecar``) and report what still holds (``pm`` stores fingerprints for soft binding)."""
    from ..errors import VerificationError
    from ..export.c2pa import read

    text = marked.read_text(encoding="utf-8")
    manifest = sidecar.read_bytes()
    out: list[Survival] = []
    for name, change in TRANSFORMS.items():
        copy = change(text)
        target = workdir / f"copy-{len(out)}.txt"
        target.write_bytes(copy.encode("utf-8"))
        state = read(target, sidecar=sidecar).state
        try:
            pm.verify(copy)
            exact = True
        except VerificationError:
            exact = False
        fuzzy = pm.verify_fuzzy(copy).status
        with_carrier = change(text + wrapper(manifest))
        out.append(Survival(name, state, exact, fuzzy, carried(with_carrier) == manifest))
    return out
