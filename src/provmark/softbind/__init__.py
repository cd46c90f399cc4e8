"""Soft binding: find the record of content that was edited, quoted, re-encoded or stripped.

Exact verification (:meth:`provmark.Provmark.verify`) fails as soon as one byte
changes. Fingerprints taken at capture survive typical edits:

* text: MinHash over character shingles of the normalised text and winnowed anchors
  that find quotes, keyed by the store (:mod:`.text`);
* images: pHash + dHash of the whole image and of its centre, searched with a
  multi-index Hamming index (:mod:`.image`, :mod:`.hamming`).

:func:`fuzzy_verify` answers identical (proven) / derived (a lead) / no match /
too short. Needs ``numpy``; images also ``Pillow`` and ``ImageHash``
(``pip install 'provmark[softbind]'``).
"""

from __future__ import annotations

from .background import BackgroundFingerprinter
from .c2pa_assertion import soft_binding_assertion
from .fingerprinter import (
    Fingerprinted,
    Fingerprinter,
    UnsupportedMediaError,
    classify,
    softbind_key,
)
from .lookup import FuzzyResult, fuzzy_verify
from .lookup_types import Match, MatchedPart
from .store import FingerprintStore, SQLiteFingerprintStore

__all__ = [
    "BackgroundFingerprinter",
    "FingerprintStore",
    "Fingerprinted",
    "Fingerprinter",
    "FuzzyResult",
    "Match",
    "MatchedPart",
    "SQLiteFingerprintStore",
    "UnsupportedMediaError",
    "classify",
    "fuzzy_verify",
    "soft_binding_assertion",
    "softbind_key",
]
