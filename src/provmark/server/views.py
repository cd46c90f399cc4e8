"""Record JSON as the API shows it, and the sanitized view of a raw record object.

Routes read through the privacy layer's role views (``pm.view(role, ...)``); these
helpers serve code that holds stored bytes instead (the verify answer, the web UI):
``record_json`` turns signed bytes into the API's record object, and
``ServerContext.view`` applies the same sanitizer as ``pm.view("developer")``
(``provmark.privacy.views.sanitizer``: PII detectors over free text, user ids hashed).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from ..record import slug_for
from ..store.base import StoredRecord

REDACTED = "[redacted]"
HASH_PREFIX = "hmac-sha256:"
_NOT_PAYLOAD = ("slug", "signature", "log", "view")


def record_json(
    payload: bytes, signature: dict[str, str], index: int, leaf_hash: bytes
) -> dict[str, Any]:
    """``slug``, the signed payload's fields exactly as stored (RFC 8785 of them without
    ``slug``/``signature``/``log``/``view`` is the signed payload), ``signature``, ``log``."""
    data = json.loads(payload)
    return {
        "slug": slug_for(str(data.get("record_id", ""))),
        **data,
        "signature": dict(signature),
        "log": {"index": index, "leaf_hash": base64.b64encode(leaf_hash).decode()},
    }


def stored_json(stored: StoredRecord) -> dict[str, Any]:
    return record_json(stored.payload, stored.signature, stored.index, stored.leaf_hash())


def split(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload fields, the rest: slug, signature, log, view)."""
    body = {k: v for k, v in data.items() if k not in _NOT_PAYLOAD}
    rest = {k: data[k] for k in _NOT_PAYLOAD if k in data}
    return body, rest


def changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON values differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else key
            out += changed_paths(before.get(key), after.get(key), sub)
        return out
    return [] if before == after else [path or "<record>"]


def sensitive_fields(
    data: dict[str, Any], sanitize: Callable[[dict[str, Any]], dict[str, Any]] | None = None
) -> list[str]:
    """The fields the sanitized view would change. With ``sanitize`` (for example
    ``ServerContext.sanitize_json``) exactly; without it, the fields that may carry
    personal data whatever the detectors find: snapshot, user id, error message."""
    body, _ = split(data)
    if sanitize is not None:
        return changed_paths(body, sanitize(body))
    found = []
    if (body.get("input") or {}).get("snapshot") not in (None, REDACTED):
        found.append("input.snapshot")
    user = (body.get("actor") or {}).get("user_id")
    if user and not str(user).startswith(HASH_PREFIX):
        found.append("actor.user_id")
    if (body.get("error") or {}).get("message") not in (None, REDACTED):
        found.append("error.message")
    return found
