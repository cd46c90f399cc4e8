"""Client-side text fingerprints that ride along with records posted to a server.

A record object in ``POST /v1/records`` may carry ``"fingerprint"``: the unkeyed
:class:`~provmark.softbind.text.Sketch` of its text output (``Sketch.to_json()``:
scheme, word and shingle counts, the one-permutation MinHash and the winnowed anchors,
base64). It is not part of the record (nothing signed changes): the server takes it
off before validating the record, keys it with its own soft-binding key
(:func:`~provmark.softbind.text.seal`) and stores it, so the record's edited copies
are found by ``POST /v1/verify/fuzzy`` on any server of the same database, although
the server never saw the output. A malformed fingerprint rejects the batch (422
naming ``[i].fingerprint.<field>``), like any invalid record.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import RecordError
from . import text as txt

FIELD = "fingerprint"


@dataclass(frozen=True)
class ClientPrint:
    record_id: str
    sketch: txt.Sketch
    media_type: str | None


def attach(draft: MutableMapping[str, Any], text: str) -> None:
    """Put the sketch of ``text`` on a record about to be posted (remote client)."""
    sk = txt.sketch(text)
    if not sk.too_short:
        draft[FIELD] = sk.to_json()


def take(items: Sequence[Any]) -> list[ClientPrint]:
    """Remove and parse the fingerprints of a posted batch (``RecordError`` naming the
    record and field of the first bad one; nothing is taken off then)."""
    found: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, MutableMapping) and FIELD in item:
            found.append((i, item))
    out = []
    for i, item in found:
        try:
            sketch = txt.Sketch.from_json(item[FIELD])
        except ValueError as exc:
            field, _, reason = str(exc).partition(": ")
            raise RecordError(f"[{i}].{field}", reason or str(exc)) from None
        record_id = item.get("record_id")
        if not isinstance(record_id, str):
            raise RecordError(f"[{i}].record_id", "a record with a fingerprint needs its id")
        output = item.get("output")
        media = output.get("media_type") if isinstance(output, dict) else None
        if media is not None and not str(media).startswith("text/"):
            raise RecordError(f"[{i}].{FIELD}", f"text fingerprints only, the output is {media}")
        out.append(ClientPrint(record_id, sketch, media))
    for _, item in found:
        del item[FIELD]
    return out


def store(pm: Any, prints: Sequence[ClientPrint]) -> int:
    """Key and store client fingerprints with ``pm``'s fingerprinter; returns how many."""
    fp = getattr(pm, "fingerprinter", None)
    if fp is None or not prints:
        return 0
    inner = getattr(fp, "fingerprinter", fp)  # the background wrapper's own fingerprinter
    stored = sum(inner.add_sketch(p.record_id, p.sketch, p.media_type).stored for p in prints)
    inner.flush()
    return int(stored)
