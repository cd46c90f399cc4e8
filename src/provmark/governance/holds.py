"""Legal holds: placed on one record, a tag or a subject; released with a reason. Both are
governance actions in the log (see :mod:`.ledger`); a hold on a record may name one that
only an archive still holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, NotFoundError, RecordError
from ..record import check_tags
from .archive import archived_record_ids
from .ledger import Hold, active_holds, hold_from, record_action

if TYPE_CHECKING:
    from ..client import Provmark

__all__ = ["place_hold", "release_hold"]


def place_hold(
    pm: Provmark,
    *,
    record: str | None = None,
    tag: str | None = None,
    subject: str | None = None,
    reason: str,
    actor: str | None = None,
) -> Hold:
    """Put a legal hold on one record, every record with a tag, or every record of a user."""
    given = [(k, v) for k, v in (("record", record), ("tag", tag), ("subject", subject)) if v]
    if len(given) != 1:
        raise ConfigError("a hold needs exactly one of record, tag or subject")
    if not reason or not reason.strip():
        raise ConfigError("reason: say why the hold is placed (a case or ticket number)")
    kind, value = given[0]
    if kind == "record":
        stored = pm.store.get(value)
        if stored is None:
            if value not in archived_record_ids(pm):
                raise NotFoundError(f"record: no record {value!r} in this store or its archives")
        else:
            value = stored.record_id
    elif kind == "tag":
        key, sep, tag_value = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"tag: {value!r} is not KEY=VALUE")
        try:
            check_tags({key: tag_value})
        except RecordError as exc:
            raise ConfigError(f"tag: {exc.reason}") from None
    elif pm.hash_user_ids and not value.startswith("hmac-sha256:"):
        value = pm.hash_user_id(value)
    hold_id = record_action(
        pm, "hold", {"kind": kind, "value": value, "reason": reason.strip()}, actor=actor
    )
    stored_hold = pm.store.get(hold_id)
    assert stored_hold is not None
    return hold_from(stored_hold)


def release_hold(pm: Provmark, hold_id: str, *, reason: str, actor: str | None = None) -> str:
    """Release a hold (its id or slug); the release is logged with the hold as parent."""
    if not reason or not reason.strip():
        raise ConfigError("reason: say why the hold is released")
    active = {h.hold_id: h for h in active_holds(pm.log)}
    stored = pm.store.get(hold_id)
    if stored is None or stored.record_id not in active:
        raise NotFoundError(f"hold: {hold_id!r} is not an active hold (see `provmark hold list`)")
    return record_action(
        pm,
        "release",
        {"hold_id": stored.record_id, "reason": reason.strip()},
        actor=actor,
        parents=[stored.record_id],
    )
