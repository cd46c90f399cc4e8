"""Every governance action is itself a provenance record, signed and logged.

An action record has ``model.name = "provmark/governance"``, ``operation =
"governance.<action>"`` (``hold``, ``release``, ``archive``, ``restore``,
``erase``, ``retention``, ``backup``) and its details under
``extra.governance``. Holds and the archive history are *read back from the log*
through the :class:`~provmark.store.base.Store` protocol, so they work on every
backend and are as tamper-evident as the records they govern.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..record import new_record_id, now_utc
from ..store.base import Query, StoredRecord
from .policy import GOVERNANCE_MODEL

if TYPE_CHECKING:
    from ..log.service import Log

HOLD_KINDS = ("record", "tag", "subject")


class Ingester(Protocol):
    """Signs, logs and stores records built elsewhere (``Provmark.ingest``)."""

    def ingest(self, records: Sequence[Mapping[str, Any]]) -> list[str]: ...


def record_action(
    pm: Ingester,
    action: str,
    details: Mapping[str, Any],
    *,
    actor: str | None = None,
    output: Mapping[str, Any] | None = None,
    parents: Sequence[str] = (),
) -> str:
    """Sign, log and store one governance action; returns its record id once stored."""
    from .._version import __version__

    record: dict[str, Any] = {
        "record_id": new_record_id(),
        "generated_at": now_utc(),
        "operation": f"governance.{action}",
        "model": {"name": GOVERNANCE_MODEL, "version": __version__},
        "actor": {"user_id": actor or _os_user(), "service": "provmark-governance"},
        "tags": {"provmark.governance": action},
        "extra": {"governance": dict(details)},
    }
    if output is not None:
        record["output"] = dict(output)
    if parents:
        record["parents"] = list(parents)
    return pm.ingest([record])[0]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def actions(log: Log, action: str) -> Iterator[StoredRecord]:
    """Stored governance records of one kind, oldest first."""
    log.settle()
    cursor: str | None = None
    while True:
        page = log.store.find(
            Query(
                model=GOVERNANCE_MODEL,
                operation=f"governance.{action}",
                order="asc",
                limit=1000,
                cursor=cursor,
            )
        )
        yield from page.records
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def details_of(stored: StoredRecord) -> dict[str, Any]:
    data = json.loads(stored.payload)
    found = (data.get("extra") or {}).get("governance")
    return dict(found) if isinstance(found, dict) else {}


# ---------------------------------------------------------------- legal holds


@dataclass(frozen=True)
class Hold:
    """A legal hold: records it covers are neither archived nor erased until released."""

    hold_id: str  # the record id of the hold action
    kind: str  # record | tag | subject
    value: str  # record id, "key=value", or user id (HMAC-hashed when the store hashes ids)
    reason: str
    placed_at: str
    placed_by: str | None

    def covers(self, record_id: str, payload: Mapping[str, Any]) -> bool:
        if self.kind == "record":
            return record_id == self.value
        if self.kind == "tag":
            key, _, value = self.value.partition("=")
            return (payload.get("tags") or {}).get(key) == value
        return (payload.get("actor") or {}).get("user_id") == self.value

    def to_json(self) -> dict[str, Any]:
        return {
            "hold_id": self.hold_id,
            "kind": self.kind,
            "value": self.value,
            "reason": self.reason,
            "placed_at": self.placed_at,
            "placed_by": self.placed_by,
        }


def hold_from(stored: StoredRecord) -> Hold:
    data = json.loads(stored.payload)
    d = details_of(stored)
    return Hold(
        hold_id=stored.record_id,
        kind=str(d.get("kind")),
        value=str(d.get("value")),
        reason=str(d.get("reason", "")),
        placed_at=str(data.get("generated_at")),
        placed_by=(data.get("actor") or {}).get("user_id"),
    )


def active_holds(log: Log) -> list[Hold]:
    released = {details_of(s).get("hold_id") for s in actions(log, "release")}
    return [
        h
        for h in (hold_from(s) for s in actions(log, "hold"))
        if h.hold_id not in released and h.kind in HOLD_KINDS
    ]


def hold_on(holds: Sequence[Hold], record_id: str, payload: Mapping[str, Any]) -> Hold | None:
    """The first hold covering a record, if any."""
    for h in holds:
        if h.covers(record_id, payload):
            return h
    return None
