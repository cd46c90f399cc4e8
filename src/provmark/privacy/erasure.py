"""Crypto-shredding a subject, recorded as a provenance record of its own.

``Provmark.erase`` (and the admin role view, the CLI's ``provmark erase`` and the
server's erase endpoint through it) lands here: the subject's data keys are destroyed
in the vault, so every field encrypted for it is unreadable while every record still
verifies, and the erasure itself is captured (operation ``erasure``, the subject as an
HMAC, never in clear). A subject under a legal hold is refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from .._version import __version__
from ..canonical import canonical_bytes
from ..capture.core import Recording
from ..capture.model import Model
from ..errors import ConfigError
from ..governance.ledger import active_holds
from ..record import Record
from ..store.base import Filters, Page, Query
from .base import Erasure

if TYPE_CHECKING:
    from ..log.service import Log
    from .engine import Privacy

__all__ = ["ErasingClient", "erase"]


class ErasingClient(Protocol):
    """What an erasure needs of the embedded client: its privacy engine and log, a
    look-up of earlier erasures and a way to record this one."""

    @property
    def privacy(self) -> Privacy | None: ...
    @property
    def log(self) -> Log: ...
    def flush(self, timeout: float | None = 60.0) -> None: ...
    def find(self, query: Query | None = None, **filters: Unpack[Filters]) -> Page[Record]: ...
    def record(self, *, input: Any = None, **spec: Any) -> Recording: ...


def erase(
    pm: ErasingClient, subject: str, *, reason: str | None = None, principal: str | None = None
) -> Erasure:
    """Destroy ``subject``'s data keys and record the erasure; idempotent (a second call
    returns the first erasure's record id)."""
    privacy = pm.privacy
    if privacy is None or privacy.vault is None:
        raise ConfigError("field encryption is off for this store: there is nothing to erase")
    if not subject:
        raise ConfigError("subject must not be empty", field="subject")
    pm.flush()  # records captured before the request are sealed with the old key
    hashed = privacy.hash_subject(subject)
    tag = f"{privacy.subject_tag}={subject}"
    holds = [
        h
        for h in active_holds(pm.log)
        if (h.kind == "subject" and h.value in (subject, hashed))
        or (h.kind == "tag" and h.value == tag)
    ]
    if holds:
        raise ConfigError(
            f"subject is under legal hold {holds[0].hold_id}: release the hold "
            "before erasing (provmark hold release)"
        )
    why = privacy.redact_text(reason) if reason else None
    result = privacy.vault.erase(hashed, why)
    tags = {"subject": hashed}
    if result.already_erased:
        page = pm.find(operation="erasure", tags=tags, limit=1)
        earlier = page.records[0].record_id if page.records else None
        return replace(result, record_id=earlier)
    receipt = {
        "erasure": {
            "subject": hashed,
            "erased_at": result.erased_at,
            "keys_shredded": result.keys_shredded,
        }
    }
    extra: dict[str, Any] = {"keys_shredded": result.keys_shredded, "scrubbed": result.scrubbed}
    if why:
        extra["reason"] = why
    if principal:
        extra["requested_by"] = principal
    model = Model("provmark/erasure", version=__version__)
    with pm.record(model=model, operation="erasure", tags=tags, extra=extra, snapshot=False) as rec:
        rec.set_output(canonical_bytes(receipt).decode(), media_type="application/json")
    pm.flush()
    return replace(result, record_id=rec.record_id)
