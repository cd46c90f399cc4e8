"""How records are shown to each role: the full view and the sanitized view.

The sanitized view (developers, admins) replaces, wherever they appear:

* ``input.snapshot``  -> ``"[redacted]"``
* ``actor.user_id``   -> ``hmac-sha256:<hex>``, keyed with the store's ``actor`` secret,
  the same value ``provmark.open(..., hash_user_ids=True)`` stores, so equal users stay
  matchable; ids that are already hashed are left alone
* ``error.message``   -> ``"[redacted]"`` (``error.type`` stays)

and says so in ``"view": "sanitized"`` and ``"redacted": [field, ...]``. A sanitized
record's signature no longer matches its bytes, so it is for reading, not for
verifying: ``POST /v1/verify`` checks the stored bytes on the server.

Bundles carry the signed bytes verbatim (a changed byte breaks the signature), so
a developer gets the bundle of a record only when sanitizing would change nothing;
otherwise the answer is 403 naming the fields (ask an auditor, or verify with
``POST /v1/verify``).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

from ..record import slug_for
from ..store.base import StoredRecord

REDACTED = "[redacted]"
HASH_PREFIX = "hmac-sha256:"

HashUser = Callable[[str], str]


def record_json(
    payload: bytes, signature: dict[str, str], index: int, leaf_hash: bytes
) -> dict[str, Any]:
    """A record as the API returns it: ``slug``, the signed payload's fields exactly as
    stored (so RFC 8785 of them minus ``slug``/``signature``/``log``/``view`` is the
    signed payload), its ``signature`` and its ``log`` position."""
    data = json.loads(payload)
    return {
        "slug": slug_for(str(data.get("record_id", ""))),
        **data,
        "signature": dict(signature),
        "log": {"index": index, "leaf_hash": base64.b64encode(leaf_hash).decode()},
    }


def stored_json(stored: StoredRecord) -> dict[str, Any]:
    return record_json(stored.payload, stored.signature, stored.index, stored.leaf_hash())


def sensitive_fields(data: dict[str, Any]) -> list[str]:
    """The fields of a record (JSON object) that the sanitized view replaces."""
    found = []
    inp = data.get("input") or {}
    if inp.get("snapshot") not in (None, REDACTED):
        found.append("input.snapshot")
    actor = data.get("actor") or {}
    user = actor.get("user_id")
    if user and not str(user).startswith(HASH_PREFIX):
        found.append("actor.user_id")
    err = data.get("error") or {}
    if err.get("message") not in (None, REDACTED):
        found.append("error.message")
    return found


def sanitize(data: dict[str, Any], hash_user: HashUser) -> dict[str, Any]:
    """A sanitized copy of a record JSON object (see the module doc)."""
    fields = sensitive_fields(data)
    out = copy.deepcopy(data)
    for name in fields:
        part, key = name.split(".")
        if name == "actor.user_id":
            out[part][key] = hash_user(str(out[part][key]))
        else:
            out[part][key] = REDACTED
    out["view"] = "sanitized"
    out["redacted"] = fields
    return out


def shown(data: dict[str, Any], full: bool, hash_user: HashUser) -> dict[str, Any]:
    """The record JSON for a caller: full (auditors) or sanitized."""
    if full:
        return {**data, "view": "full"}
    return sanitize(data, hash_user)
