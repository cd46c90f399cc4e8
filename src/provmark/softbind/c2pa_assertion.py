"""The ``c2pa.soft-binding`` assertion for a manifest (C2PA 2.x, soft binding assertion).

Shape (``soft-binding-map``): ``alg``, ``blocks`` of ``{scope, value}``, ``pad``
and a human-readable ``name``. provmark's algorithms are not on the C2PA
soft-binding algorithm list, so their names are in provmark's own namespace:

* images, ``dev.provmark.imagehash.1``: block 1 covers the whole image, block 2
  the centre 80 % (a spatial rectangle region); each value is base64 of the
  8-byte pHash then the 8-byte dHash (big-endian), as computed by
  :mod:`provmark.softbind.image`. Anyone can recompute and compare these.
* text, ``dev.provmark.text-minhash.2``: one block, the keyed one-permutation MinHash
  of 8-character shingles (scheme 2; ``.1`` was word shingles)
  (128 little-endian uint32, base64). It is keyed, so only the store holding the
  soft-binding key can resolve it; it reveals nothing about the text.
"""

from __future__ import annotations

import base64
from typing import Any

from . import image as img
from . import text as txt
from .fingerprinter import UnsupportedMediaError, classify

LABEL = "c2pa.soft-binding"
IMAGE_ALG = "dev.provmark.imagehash.1"
TEXT_ALG = "dev.provmark.text-minhash.2"


def _region(box: tuple[float, float, float, float]) -> dict[str, Any]:
    x, y, w, h = (round(v * 100, 3) for v in box)
    return {
        "region": [
            {
                "type": "spatial",
                "shape": {
                    "type": "rectangle",
                    "unit": "percent",
                    "origin": {"x": x, "y": y},
                    "width": w,
                    "height": h,
                },
            }
        ],
        "name": "centre 80%",
    }


def _value(code: img.Code) -> str:
    return base64.b64encode(code.phash.to_bytes(8, "big") + code.dhash.to_bytes(8, "big")).decode()


def soft_binding_assertion(
    content: Any, media_type: str | None = None, *, text_key: bytes | None = None
) -> dict[str, Any] | None:
    """``{"label": "c2pa.soft-binding", "data": {...}}`` for a manifest definition.

    ``content`` is the asset (bytes, path, PIL image or text). Returns ``None``
    when there is nothing to bind: a type fingerprints do not cover, text without
    ``text_key`` (the store's soft-binding secret), or content too short/plain.
    """
    try:
        kind, source = classify(content, media_type)
    except UnsupportedMediaError:
        return None
    if kind == "image":
        keyed = txt.Keyed(text_key or b"\x00" * 32)  # the pixel hash is not published
        ip = img.fingerprint_image(source, keyed)
        if ip.too_plain:
            return None
        blocks = []
        for code in ip.codes:
            scope = {} if code.region == img.FULL else {"region": _region(img.CENTRE_BOX)}
            blocks.append({"scope": scope, "value": _value(code)})
        data = {
            "alg": IMAGE_ALG,
            "name": "pHash + dHash (64-bit each) of the whole image and of its centre 80%",
            "blocks": blocks,
            "pad": [],
        }
        return {"label": LABEL, "data": data}
    if text_key is None:
        return None
    tp = txt.fingerprint_text(source, txt.Keyed(text_key))
    if tp.too_short:
        return None
    value = base64.b64encode(tp.signature.astype("<u4").tobytes()).decode()
    data = {
        "alg": TEXT_ALG,
        "name": "keyed MinHash of normalised 3-word shingles (resolvable by the issuing store)",
        "blocks": [{"scope": {}, "value": value}],
        "pad": [],
    }
    return {"label": LABEL, "data": data}
