"""The one verdict: every check as pass, fail or not run, with its reason.

Every surface (library, CLI, ``POST /v1/verify``, the web UI, offline bundles) renders
a :class:`Report`; none decides on its own which checks count. A report is verified
when no check failed and the base checks ran; :meth:`Report.raise_for_failure` turns
it into the library's answer (:class:`~provmark.verify.Verified` or a
:class:`~provmark.errors.VerificationError` naming the failed check).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import VerificationError

if TYPE_CHECKING:
    from ..verify import Verified

__all__ = ["FAIL", "NOT_RUN", "PASS", "CheckResult", "Report"]

PASS: Literal["pass"] = "pass"
FAIL: Literal["fail"] = "fail"
NOT_RUN: Literal["not_run"] = "not_run"
Result = Literal["pass", "fail", "not_run"]


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, ``pass`` / ``fail`` / ``not_run`` and why."""

    name: str
    result: Result
    detail: str

    @property
    def ok(self) -> bool:
        return self.result == PASS

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "result": self.result, "detail": self.detail}


@dataclass
class Report:
    """What a :class:`~provmark.verification.Verifier` found, check by check.

    ``outcome`` is the verified record (payload, signature, log position) once every
    check passed; ``subject`` names what was checked when it is known even on failure
    (record id, content hash).
    """

    checks: list[CheckResult]
    outcome: Verified | None = None
    subject: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> CheckResult | None:
        return next((c for c in self.checks if c.result == FAIL), None)

    @property
    def verified(self) -> bool:
        return self.failed is None and self.outcome is not None

    def error(self) -> VerificationError | None:
        failed = self.failed
        if failed is not None:
            return VerificationError(failed.name, failed.detail)
        if self.outcome is None:
            return VerificationError("record", "nothing was verified")
        return None

    def raise_for_failure(self) -> Verified:
        """The verified record, or :class:`VerificationError` naming the failed check."""
        exc = self.error()
        if exc is not None:
            raise exc
        assert self.outcome is not None
        return self.outcome

    def names(self) -> list[str]:
        return [c.name for c in self.checks]

    def to_json(self) -> dict[str, Any]:
        """The answer of ``POST /v1/verify`` and ``provmark verify --json``."""
        out: dict[str, Any] = {"verified": self.verified}
        out.update(self.subject)
        if self.outcome is not None:
            out.update({k: v for k, v in self.outcome.to_json().items() if k != "checks"})
            out["checkpoint"] = self.outcome.checkpoint
            out["verified"] = self.verified
        failed = self.failed
        if failed is not None:
            out["failed_check"] = failed.name
            out["reason"] = failed.detail
        out["checks"] = [c.to_json() for c in self.checks]
        return out

    @staticmethod
    def run(steps: Sequence[tuple[str, Any]], done: list[CheckResult]) -> VerificationError | None:
        """Run ``(name, step)`` pairs in order after ``done``; a step returns its passing
        detail or raises. After the first failure the rest are ``not_run``."""
        failed: VerificationError | None = next(
            (VerificationError(c.name, c.detail) for c in done if c.result == FAIL), None
        )
        for name, step in steps:
            if failed is not None:
                done.append(CheckResult(name, NOT_RUN, f"not run: {failed.check} failed"))
                continue
            try:
                detail = step()
            except VerificationError as exc:
                failed = exc
                done.append(CheckResult(exc.check, FAIL, exc.detail))
                if exc.check != name:  # e.g. a malformed record: the planned check did not run
                    done.append(CheckResult(name, NOT_RUN, f"not run: {exc.check} failed"))
                continue
            if detail is not None:
                done.append(CheckResult(name, PASS, str(detail)))
        return failed
