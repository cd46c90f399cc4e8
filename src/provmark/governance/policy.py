"""Retention policies from a TOML file.

::

    [archive]
    to = "s3://acme-provenance/archive"     # where `retention apply` archives to

    [defaults]                              # records no rule matches
    hot = "90d"
    delete_after = "7y"                     # or "never"

    [[rule]]
    name = "support-chat"
    model = "acme/chat-*"                   # glob on model.name
    operation = "chat"
    tag = { team = "support" }              # every tag must match
    hot = "30d"
    delete_after = "1y"

The first rule (in file order) whose every match key matches a record governs
it; records no rule matches follow ``[defaults]``, or stay hot for ever when
there are no defaults. Periods are ``<n>h``, ``<n>d``, ``<n>w`` or ``<n>y``
(365 days). Unknown keys and impossible periods are refused with the key named.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_PERIOD = re.compile(r"^\s*(\d+)\s*([hdwy])\s*$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7, "y": 24 * 365}
MAX_PERIOD = timedelta(days=365 * 200)
GOVERNANCE_MODEL = "provmark/governance"

_TOP_KEYS = {"archive", "defaults", "rule"}
_RULE_KEYS = {"name", "model", "operation", "tag", "hot", "delete_after"}
_DEFAULT_KEYS = {"hot", "delete_after"}
_ARCHIVE_KEYS = {"to"}


def parse_period(text: Any, where: str, *, allow_never: bool = False) -> timedelta | None:
    """``90d`` -> 90 days; ``never`` (when allowed) -> None."""
    if allow_never and text == "never":
        return None
    if not isinstance(text, str):
        raise ConfigError(f"{where}: must be a string such as '90d', not {text!r}")
    m = _PERIOD.match(text)
    if not m:
        extra = " or 'never'" if allow_never else ""
        raise ConfigError(
            f"{where}: {text!r} is not a period; use <n>h, <n>d, <n>w or <n>y (e.g. '90d'){extra}"
        )
    hours = int(m.group(1)) * _UNIT_HOURS[m.group(2)]
    if hours > MAX_PERIOD.total_seconds() / 3600:
        raise ConfigError(f"{where}: {text!r} is longer than 200 years, an impossible period")
    return timedelta(hours=hours)


def format_period(period: timedelta | None) -> str:
    if period is None:
        return "never"
    hours = int(period.total_seconds() // 3600)
    for unit in ("y", "w", "d"):
        size = _UNIT_HOURS[unit]
        if hours and hours % size == 0:
            return f"{hours // size}{unit}"
    return f"{hours}h"


@dataclass(frozen=True)
class Rule:
    """What happens to the records a rule matches: hot for ``hot``, then archived;
    erased ``delete_after`` after generation (``None``: kept for ever)."""

    name: str
    hot: timedelta
    delete_after: timedelta | None
    model: str | None = None
    operation: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def matches(self, payload: Mapping[str, Any]) -> bool:
        if self.model is not None:
            name = (payload.get("model") or {}).get("name", "")
            if not fnmatch.fnmatchcase(str(name), self.model):
                return False
        if self.operation is not None and payload.get("operation") != self.operation:
            return False
        tags = payload.get("tags") or {}
        return all(tags.get(k) == v for k, v in self.tags.items())

    def describe(self) -> str:
        match = [f"model={self.model}"] if self.model else []
        match += [f"operation={self.operation}"] if self.operation else []
        match += [f"tag {k}={v}" for k, v in self.tags.items()]
        return (
            f"{self.name}: {' '.join(match) or 'every record'} -> hot {format_period(self.hot)}, "
            f"delete after {format_period(self.delete_after)}"
        )


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    default: Rule | None = None
    archive_to: str | None = None
    source: str = "<policy>"
    sha256: str = ""

    def rule_for(self, payload: Mapping[str, Any]) -> Rule | None:
        """The rule governing a record (a parsed payload); None: it stays hot for ever.

        provmark's own governance records are never archived or erased: they are
        the holds and the archive history.
        """
        if (payload.get("model") or {}).get("name") == GOVERNANCE_MODEL:
            return None
        for rule in self.rules:
            if rule.matches(payload):
                return rule
        return self.default


def _check_keys(table: Any, known: set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    return table


def _rule(table: dict[str, Any], where: str, name: str) -> Rule:
    if "hot" not in table:
        raise ConfigError(f"{where}.hot: missing; say how long records stay hot, e.g. '90d'")
    hot = parse_period(table["hot"], f"{where}.hot")
    assert hot is not None
    delete_after = parse_period(
        table.get("delete_after", "never"), f"{where}.delete_after", allow_never=True
    )
    if delete_after is not None and delete_after < hot:
        raise ConfigError(
            f"{where}.delete_after: {format_period(delete_after)} is shorter than hot = "
            f"{format_period(hot)}; records would be deleted before they are archived"
        )
    if delete_after is not None and delete_after.total_seconds() == 0:
        raise ConfigError(f"{where}.delete_after: 0 deletes records at once; use at least 1h")
    tags = table.get("tag", {})
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ConfigError(f"{where}.tag: must be a table of strings, e.g. {{ team = 'risk' }}")
    for key in ("model", "operation", "name"):
        if key in table and (not isinstance(table[key], str) or not table[key]):
            raise ConfigError(f"{where}.{key}: must be a non-empty string")
    return Rule(
        name=str(table.get("name", name)),
        hot=hot,
        delete_after=delete_after,
        model=table.get("model"),
        operation=table.get("operation"),
        tags=dict(tags),
    )


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse and check a policy; :class:`ConfigError` names the bad key and why."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    _check_keys(data, _TOP_KEYS, source)
    rules_data = data.get("rule", [])
    if not isinstance(rules_data, list):
        raise ConfigError(f"{source}: 'rule' must be an array of tables ([[rule]])")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, table in enumerate(rules_data):
        where = f"{source}: rule[{i}]"
        _check_keys(table, _RULE_KEYS, where)
        if not any(k in table for k in ("model", "operation", "tag")):
            raise ConfigError(
                f"{where}: matches nothing; give model, operation or tag (or use [defaults])"
            )
        rule = _rule(table, where, f"rule[{i}]")
        if rule.name in names:
            raise ConfigError(f"{where}.name: {rule.name!r} is used by an earlier rule")
        names.add(rule.name)
        rules.append(rule)
    default = None
    if "defaults" in data:
        default = _rule(
            _check_keys(data["defaults"], _DEFAULT_KEYS, f"{source}: defaults"),
            f"{source}: defaults",
            "defaults",
        )
    archive_to = None
    if "archive" in data:
        archive = _check_keys(data["archive"], _ARCHIVE_KEYS, f"{source}: archive")
        archive_to = archive.get("to")
        if archive_to is not None and (not isinstance(archive_to, str) or not archive_to):
            raise ConfigError(f"{source}: archive.to: must be a path or URL")
    if not rules and default is None:
        raise ConfigError(f"{source}: no [[rule]] and no [defaults]: the policy does nothing")
    return Policy(
        rules=tuple(rules),
        default=default,
        archive_to=archive_to,
        source=source,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def load_policy(path: str | Path) -> Policy:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"policy file {path}: {exc.strerror or exc}") from None
    return parse_policy(text, str(path))
