"""Exports to open standards: W3C PROV, in-toto/DSSE, OpenLineage, C2PA.

    from provmark.export import get_exporter, lineage

    exporter = get_exporter("prov-json")
    data = exporter.export(lineage(pm.store, record_id))

``export`` returns ``bytes`` for whole-document formats (PROV) and an iterator of
lines for line formats (in-toto, OpenLineage). C2PA marking of media is in
:mod:`provmark.export.c2pa`.
"""

from .base import (
    FORMATS,
    Exporter,
    RecordLike,
    Resolve,
    iter_query,
    lineage,
    with_payload,
)
from .registry import get_exporter, registry

__all__ = [
    "FORMATS",
    "Exporter",
    "RecordLike",
    "Resolve",
    "get_exporter",
    "iter_query",
    "lineage",
    "registry",
    "with_payload",
]
