"""Redaction policy: which detectors run and what happens to each field of a document."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from provmark.errors import ConfigError
from provmark.redaction._types import Detector
from provmark.redaction.detectors import (
    _BUILTIN_NATIONAL_IDS,
    CustomRegex,
    default_detectors,
)

__all__ = ["Action", "Mode", "Policy"]


class Action(StrEnum):
    """What happens to a field of a structured document."""

    KEEP = "keep"  # leave as is (fields below it may still have their own rules)
    DROP = "drop"  # remove the field
    MASK = "mask"  # whole value -> "[REDACTED]"
    HASH = "hash"  # whole value -> "hmac-sha256:<hex>"
    REDACT = "redact"  # run the detectors over the strings inside
    ENCRYPT = "encrypt"  # marker in the document; value handed back for encryption


class Mode(StrEnum):
    """How a detected span in text is replaced."""

    MASK = "mask"  # [EMAIL]
    HASH = "hash"  # [EMAIL:0123456789abcdef]  (first 16 hex of the keyed HMAC)
    DROP = "drop"  # removed


#: Actions that consume a whole value (container or scalar) at the path they match.
TERMINAL_ACTIONS = frozenset({Action.DROP, Action.MASK, Action.HASH, Action.ENCRYPT})


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: str
    action: Action
    parts: tuple[re.Pattern[str] | str | None, ...]  # str literal, regex glob, None = "**"
    rank: tuple[int, int, int, int, int]

    def matches(self, path: Sequence[str]) -> bool:
        return _match(self.parts, 0, path, 0)


def _match(
    parts: Sequence[re.Pattern[str] | str | None], i: int, path: Sequence[str], j: int
) -> bool:
    while i < len(parts):
        p = parts[i]
        if p is None:  # "**": zero or more segments
            return any(_match(parts, i + 1, path, k) for k in range(j, len(path) + 1))
        if j >= len(path):
            return False
        if isinstance(p, str):
            if p != path[j]:
                return False
        elif p.fullmatch(path[j]) is None:
            return False
        i, j = i + 1, j + 1
    return j == len(path)


def _compile_rule(pattern: str, action: Action, order: int) -> _Rule:
    segs = pattern.split(".")
    if not pattern or any(not s for s in segs):
        raise ConfigError(f"fields.{pattern}: empty path segment")
    parts: list[re.Pattern[str] | str | None] = []
    literal = glob = double = 0
    for s in segs:
        if s == "**":
            parts.append(None)
            double += 1
        elif "*" in s:
            parts.append(re.compile(".*".join(re.escape(x) for x in s.split("*")), re.S))
            glob += 1 if s != "*" else 0
        else:
            parts.append(s)
            literal += 1
    # Most specific wins: more literal segments, then more partial globs, then fewer
    # "**", then more segments; ties go to the rule declared first.
    return _Rule(pattern, action, tuple(parts), (-literal, -glob, double, -len(segs), order))


def _action(value: object, key: str) -> Action:
    try:
        if not isinstance(value, str):
            raise ValueError
        return Action(value)
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise ConfigError(f"{key}: unknown action {value!r} (expected one of {allowed})") from None


@dataclass(frozen=True, slots=True)
class Policy:
    """Per-field actions plus the detectors used for ``redact`` and text redaction.

    ``fields`` maps dotted paths to actions. A segment ``*`` matches one key or list
    index, ``api_*`` matches keys by glob, ``**`` matches any number of segments.
    List items are addressed by index (``messages.0.content``, ``messages.*.content``).
    The most specific matching pattern wins (more literal segments, then partial
    globs, then fewer ``**``, then more segments, then declaration order). An explicit
    ``drop``/``mask``/``hash``/``encrypt`` consumes the whole value at that path;
    ``keep``/``redact`` on a container apply to the scalars below it unless a more
    specific rule says otherwise. Other scalars get ``default``.
    """

    default: Action = Action.REDACT
    fields: Mapping[str, Action] = field(default_factory=dict)
    detectors: tuple[Detector, ...] = field(default_factory=default_detectors)
    mode: Mode = Mode.HASH
    _rules: tuple[_Rule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", _action(self.default, "default"))
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            allowed = ", ".join(m.value for m in Mode)
            raise ConfigError(f"mode: unknown mode {self.mode!r} (expected {allowed})") from None
        fields = {}
        for pattern, act in self.fields.items():
            if not isinstance(pattern, str):
                raise ConfigError(f"fields: path {pattern!r} is not a string")
            fields[pattern] = _action(act, f"fields.{pattern}")
        rules = sorted(
            (_compile_rule(p, a, i) for i, (p, a) in enumerate(fields.items())),
            key=lambda r: r.rank,
        )
        object.__setattr__(self, "fields", MappingProxyType(fields))
        object.__setattr__(self, "_rules", tuple(rules))
        dets = tuple(self.detectors)
        seen: set[str] = set()
        for d in dets:
            if not isinstance(d, Detector):
                raise ConfigError(f"detectors: {d!r} is not a Detector (needs name and find)")
            if d.name in seen:
                raise ConfigError(f"detectors: duplicate detector name {d.name!r}")
            seen.add(d.name)
        object.__setattr__(self, "detectors", dets)

    def action_for(self, path: Sequence[str]) -> Action | None:
        """The action of the most specific pattern matching ``path`` exactly, if any."""
        for rule in self._rules:
            if rule.matches(path):
                return rule.action
        return None

    def with_detectors(self, *extra: Detector) -> Policy:
        """A copy of this policy with plug-in detectors (an NER model, say) appended."""
        return Policy(self.default, dict(self.fields), (*self.detectors, *extra), self.mode)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> Policy:
        """Build a policy from plain data, as loaded from TOML or JSON.

        Keys: ``default`` (action), ``mode`` (``mask``/``hash``/``drop``), ``fields``
        (path -> action), ``detectors`` (``enable``: only these run; ``disable``;
        ``entropy_threshold``; ``hex_entropy_threshold``; ``entropy_min_length``),
        ``custom`` and ``national_ids`` (lists of ``{name, pattern[, kind]}``; a
        ``national_ids`` entry may also name a built-in, e.g. ``"us_ssn"``). Nested
        tables under ``fields`` (TOML's reading of unquoted dotted keys) are joined.
        Anything unknown raises :class:`ConfigError` naming the key.
        """
        cfg = _mapping(cfg, "policy")
        _no_unknown(cfg, {"default", "mode", "fields", "detectors", "custom", "national_ids"}, "")
        det = _mapping(cfg.get("detectors", {}), "detectors")
        keys = {
            "enable",
            "disable",
            "entropy_threshold",
            "hex_entropy_threshold",
            "entropy_min_length",
        }
        _no_unknown(det, keys, "detectors.")
        kwargs: dict[str, Any] = {}
        for key, arg, typ in (
            ("entropy_threshold", "entropy_threshold", (int, float)),
            ("hex_entropy_threshold", "hex_entropy_threshold", (int, float)),
            ("entropy_min_length", "entropy_min_length", (int,)),
        ):
            if key in det:
                if isinstance(det[key], bool) or not isinstance(det[key], typ):
                    raise ConfigError(f"detectors.{key}: expected a number, got {det[key]!r}")
                kwargs[arg] = det[key]
        detectors: list[Detector] = list(default_detectors(**kwargs))
        names = {d.name for d in detectors}
        for section in ("national_ids", "custom"):
            entries = cfg.get(section, [])
            if not isinstance(entries, list):
                raise ConfigError(f"{section}: expected a list")
            for i, entry in enumerate(entries):
                key = f"{section}[{i}]"
                if section == "national_ids" and isinstance(entry, str):
                    if entry not in _BUILTIN_NATIONAL_IDS:
                        known = ", ".join(sorted(_BUILTIN_NATIONAL_IDS))
                        raise ConfigError(
                            f"{key}: unknown built-in national id {entry!r} ({known})"
                        )
                    if entry not in names:  # pragma: no cover - built-ins are always present
                        detectors.append(_BUILTIN_NATIONAL_IDS[entry]())
                        names.add(entry)
                    continue
                d = _custom(entry, key)
                if d.name in names:
                    raise ConfigError(f"{key}.name: duplicate detector name {d.name!r}")
                names.add(d.name)
                detectors.append(d)
        for key in ("enable", "disable"):
            if key not in det:
                continue
            lst = det[key]
            if not isinstance(lst, list) or not all(isinstance(x, str) for x in lst):
                raise ConfigError(f"detectors.{key}: expected a list of detector names")
            for i, n in enumerate(lst):
                if n not in names:
                    raise ConfigError(f"detectors.{key}[{i}]: unknown detector {n!r}")
            chosen = set(lst)
            detectors = [d for d in detectors if (d.name in chosen) == (key == "enable")]
        fields = _flatten(_mapping(cfg.get("fields", {}), "fields"), "")
        return cls(
            default=_action(cfg.get("default", Action.REDACT), "default"),
            fields={k: _action(v, f"fields.{k}") for k, v in fields.items()},
            detectors=tuple(detectors),
            mode=Mode.HASH if "mode" not in cfg else _mode(cfg["mode"]),
        )


def _flatten(fields: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """TOML turns ``params.api_key = "drop"`` into nested tables: join them back."""
    out: dict[str, Any] = {}
    for k, v in fields.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{path}."))
        else:
            out[path] = v
    return out


def _mode(value: object) -> Mode:
    try:
        if not isinstance(value, str):
            raise ValueError
        return Mode(value)
    except ValueError:
        allowed = ", ".join(m.value for m in Mode)
        raise ConfigError(f"mode: unknown mode {value!r} (expected one of {allowed})") from None


def _mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a table/mapping, got {type(value).__name__}")
    return value


def _no_unknown(cfg: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for k in cfg:
        if k not in allowed:
            raise ConfigError(
                f"{prefix}{k}: unknown key (expected one of {', '.join(sorted(allowed))})"
            )


def _custom(entry: object, key: str) -> CustomRegex:
    e = _mapping(entry, key)
    _no_unknown(e, {"name", "pattern", "kind"}, f"{key}.")
    for req in ("name", "pattern"):
        if not isinstance(e.get(req), str):
            raise ConfigError(f"{key}.{req}: required string")
    kind = e.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise ConfigError(f"{key}.kind: expected a string")
    try:
        return CustomRegex(e["name"], e["pattern"], kind)
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc}") from None
