"""One verifier, one verdict on every surface.

``Verifier(trust, policies).verify(evidence, ...)`` returns a :class:`Report` listing
every check as pass / fail / not run with its reason; ``report.raise_for_failure()``
gives the verified record or raises :class:`~provmark.errors.VerificationError` naming
the failed check. The library, the CLI, the server, the web UI and offline bundles
all call it and only render the report (see ``docs/trust-model.md``).
"""

from __future__ import annotations

from .policies import RevocationPolicy, TimestampPolicy, WitnessQuorum
from .report import FAIL, NOT_RUN, PASS, CheckResult, Report
from .verifier import BASE_CHECKS, History, Policy, Subject, Verifier

__all__ = [
    "BASE_CHECKS",
    "FAIL",
    "NOT_RUN",
    "PASS",
    "CheckResult",
    "History",
    "Policy",
    "Report",
    "RevocationPolicy",
    "Subject",
    "TimestampPolicy",
    "Verifier",
    "WitnessQuorum",
]
