"""Apply a retention policy: archive what is past its hot period, erase what is past
``delete_after``; legal holds block both. ``plan`` only looks; ``apply`` acts and logs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..record import parse_time
from ..store.base import StoredRecord
from .archive import (
    create_archive,
    erase_from_archive,
    known_archives,
    open_known,
    read_index_columns,
)
from .archive_format import Progress
from .hot import supports_hot_removal
from .ledger import Hold, active_holds, hold_on, record_action
from .policy import Policy, Rule

if TYPE_CHECKING:
    from ..client import Provmark


@dataclass(frozen=True)
class Candidate:
    index: int
    record_id: str
    generated_at: str
    rule: str
    archive_id: str | None = None  # None: still hot

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Plan:
    now: str
    archive: list[Candidate] = field(default_factory=list)
    erase: list[Candidate] = field(default_factory=list)
    held: list[tuple[Candidate, str, str]] = field(default_factory=list)  # (what, action, hold)
    hot_for_ever: int = 0
    hot: int = 0
    stored: dict[int, StoredRecord] = field(default_factory=dict, repr=False)

    def to_json(self, limit: int = 1000) -> dict[str, Any]:
        return {
            "now": self.now,
            "hot_records": self.hot,
            "no_rule": self.hot_for_ever,
            "to_archive": len(self.archive),
            "to_erase": len(self.erase),
            "held": len(self.held),
            "archive": [c.to_json() for c in self.archive[:limit]],
            "erase": [c.to_json() for c in self.erase[:limit]],
            "blocked_by_hold": [
                {**c.to_json(), "action": action, "hold_id": hold}
                for c, action, hold in self.held[:limit]
            ],
        }


def _age_past(generated_at: str, period: Any, now: datetime) -> bool:
    try:
        return bool(now - parse_time(generated_at) >= period)
    except ValueError:
        return False


def plan(
    pm: Provmark,
    policy: Policy,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Plan:
    """What ``apply`` would do now. Nothing is changed."""
    pm.flush()
    when = now or datetime.now(UTC)
    result = Plan(now=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    holds = active_holds(pm.log)
    total = pm.store.count()
    for n, stored in enumerate(pm.store.iter_records(), 1):
        result.hot += 1
        data = json.loads(stored.payload)
        rule = policy.rule_for(data)
        if progress and n % 2000 == 0:
            progress(n, total)
        if rule is None:
            result.hot_for_ever += 1
            continue
        generated = str(data.get("generated_at", ""))
        cand = Candidate(stored.index, stored.record_id, generated, rule.name)
        past_hot = _age_past(generated, rule.hot, when)
        past_life = rule.delete_after is not None and _age_past(generated, rule.delete_after, when)
        if not past_hot:
            continue
        hold = hold_on(holds, stored.record_id, data)
        if hold is not None:
            result.held.append((cand, "archive", hold.hold_id))
            continue
        result.archive.append(cand)
        result.stored[stored.index] = stored
        if past_life:
            result.erase.append(cand)
    if progress:
        progress(total, total)
    _plan_erasure(pm, policy, when, holds, result)
    return result


def _plan_erasure(
    pm: Provmark, policy: Policy, when: datetime, holds: list[Hold], result: Plan
) -> None:
    planned = {c.index for c in result.erase}
    for ref in known_archives(pm):
        opened = open_known(pm, ref)
        for row in read_index_columns(opened):
            index = int(row["index"])
            if index in planned:
                continue
            rule: Rule | None = policy.rule_for(row["payload"])
            if rule is None or rule.delete_after is None:
                continue
            if not _age_past(str(row["generated_at"]), rule.delete_after, when):
                continue
            cand = Candidate(
                index, str(row["record_id"]), str(row["generated_at"]), rule.name, ref.archive_id
            )
            hold = hold_on(holds, cand.record_id, row["payload"])
            if hold is not None:
                result.held.append((cand, "erase", hold.hold_id))
                continue
            planned.add(index)
            result.erase.append(cand)


def apply(
    pm: Provmark,
    policy: Policy,
    *,
    to: str | None = None,
    now: datetime | None = None,
    actor: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Archive, verify, drop hot rows, erase by age; every step logged as a record."""
    destination = to or policy.archive_to
    result = plan(pm, policy, now=now)
    if result.archive and not destination:
        raise ConfigError(
            "no archive destination",
            field="to",
            hint="give a URL, or [archive] to = ... in the policy",
        )
    if result.archive and not supports_hot_removal(pm):
        from .hot import hot_table

        hot_table(pm)  # raises the clear "not on this backend" error before anything is written
    summary: dict[str, Any] = {
        "policy": policy.source,
        "policy_sha256": policy.sha256,
        "archived": 0,
        "erased": 0,
        "held": len(result.held),
        "archives": [],
    }
    if result.archive:
        assert destination is not None
        records = [result.stored[c.index] for c in result.archive]
        made = create_archive(
            pm,
            records,
            destination,
            actor=actor,
            details={"policy": policy.source, "policy_sha256": policy.sha256},
            progress=progress,
        )
        summary["archived"] = made.records
        summary["archives"].append(made.archive_id)
        result.erase = [
            c
            if c.archive_id is not None
            else Candidate(**{**c.__dict__, "archive_id": made.archive_id})
            for c in result.erase
        ]
    by_archive: dict[str, dict[int, str]] = {}
    for c in result.erase:
        assert c.archive_id is not None
        by_archive.setdefault(c.archive_id, {})[c.index] = c.rule
    refs = {r.archive_id: r for r in known_archives(pm)} if by_archive else {}
    for archive_id, rules in by_archive.items():
        summary["erased"] += erase_from_archive(
            pm, refs[archive_id], set(rules), rules=rules, actor=actor
        )
    if summary["erased"] and supports_hot_removal(pm):
        _drop_erased_hot_rows(pm, result.erase)
    summary["action_id"] = record_action(
        pm,
        "retention",
        {k: v for k, v in summary.items() if k != "action_id"},
        actor=actor,
    )
    return summary


def _drop_erased_hot_rows(pm: Provmark, erased: list[Candidate]) -> None:
    """Rows erased from an archive that were also still hot (archived with keep-hot)."""
    from .hot import hot_table

    holds = active_holds(pm.log)
    stale = []
    for c in erased:
        stored = pm.store.get(c.record_id)
        if stored is not None and hold_on(holds, c.record_id, json.loads(stored.payload)) is None:
            stale.append(stored)
    if stale:
        with hot_table(pm) as hot:
            hot.remove(stale)
