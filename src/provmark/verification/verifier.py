"""``Verifier``: the checks every surface runs, in one place.

In the spirit of sigstore-python's ``Verifier.verify(bundle, policy)``: a verifier is
built from what it trusts (:class:`~provmark.verify.Trust`: pinned record keys, the
log key and origin, optionally an older checkpoint) and a list of policies; each call
takes evidence (the exact signed bytes, signature, log position, inclusion proof and
signed checkpoint) and returns a :class:`~provmark.verification.report.Report`.

Base checks, always, in this order: ``output_hash`` (when the content's hash is
known), ``record_signature``, ``key_validity``, ``checkpoint_signature``,
``inclusion_proof``, then ``consistency`` (given an older checkpoint). Then each
policy adds its check (revocation, witness quorum, RFC 3161 time). Checks a caller
ran before (a C2PA manifest's binding) come first, as ``prechecks``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..crypto.keys import check_key_window, verify_record_signature
from ..errors import VerificationError
from ..log.merkle import verify_consistency, verify_inclusion
from ..log.note import Checkpoint
from ..record import output_hashes
from ..verify import Check, Evidence, Trust, Verified, leaf_hash_of
from .report import PASS, CheckResult, Report

__all__ = ["BASE_CHECKS", "History", "Policy", "Subject", "Verifier"]

BASE_CHECKS = (
    "output_hash",
    "record_signature",
    "key_validity",
    "checkpoint_signature",
    "inclusion_proof",
)


class History(Protocol):
    """Outside evidence of when a record was already logged (witnesses, TSA tokens)."""

    def existed_by(self, subject: Subject) -> tuple[str, str] | None:
        """The earliest (RFC 3339 time, how) a witnessed or time-stamped checkpoint
        included the record, or None."""
        ...

    def stamped_by(self, subject: Subject) -> tuple[str, str] | None:
        """The earliest valid RFC 3161 token on a checkpoint including the record."""
        ...


@dataclass
class Subject:
    """What the base checks established, for the policies to judge."""

    evidence: Evidence
    trust: Trust
    data: dict[str, Any]
    leaf_hash: bytes
    checkpoint: Checkpoint
    history: History | None

    @property
    def key_id(self) -> str:
        return str(self.evidence.signature.get("key_id", ""))

    @property
    def generated_at(self) -> str:
        return str(self.data.get("generated_at", ""))


class Policy(Protocol):
    """One more check: ``name`` and a call returning its passing detail (None: not
    applicable, not listed) or raising :class:`VerificationError`."""

    @property
    def name(self) -> str: ...

    def __call__(self, subject: Subject) -> str | None: ...


class Verifier:
    """Trust plus policies; :meth:`verify` evidence into a :class:`Report`."""

    def __init__(self, trust: Trust | None, policies: Sequence[Policy] = ()) -> None:
        """``trust`` may be None only for :meth:`not_run` (evidence that failed to parse)."""
        self._trust = trust
        self.policies = tuple(policies)

    @property
    def trust(self) -> Trust:
        if self._trust is None:
            raise TypeError("this Verifier was made without trust: it can only report not_run")
        return self._trust

    def planned(self, *, content: bool = True, consistency: bool = False) -> list[str]:
        """The names of the checks a verification runs, in order."""
        names = list(BASE_CHECKS if content else BASE_CHECKS[1:])
        if consistency:
            names.append("consistency")
        return names + [p.name for p in self.policies]

    def not_run(
        self,
        failure: VerificationError | None,
        *,
        prechecks: Sequence[CheckResult] = (),
        content: bool = True,
        consistency: bool = False,
        subject: dict[str, Any] | None = None,
    ) -> Report:
        """A report for evidence that could not even be gathered (no record, not logged),
        or (``failure=None``) after a failed precheck."""
        from .report import FAIL, NOT_RUN

        checks = list(prechecks)
        if failure is None:
            first = next(c for c in checks if c.result == FAIL)
            failure = VerificationError(first.name, first.detail)
        else:
            checks.append(CheckResult(failure.check, FAIL, failure.detail))
        done = {c.name for c in checks}
        checks += [
            CheckResult(n, NOT_RUN, f"not run: {failure.check} failed")
            for n in self.planned(content=content, consistency=consistency)
            if n not in done
        ]
        return Report(checks, None, dict(subject or {}))

    def verify(
        self,
        evidence: Evidence,
        *,
        content_sha256: str | None = None,
        consistency_proof: Sequence[bytes] | None = None,
        history: History | None = None,
        prechecks: Sequence[CheckResult] = (),
        subject: dict[str, Any] | None = None,
    ) -> Report:
        checks = list(prechecks)
        trust = self.trust
        state: dict[str, Any] = {}

        def payload() -> None:
            try:
                data = json.loads(evidence.payload)
            except ValueError:
                raise VerificationError("record_payload", "record bytes are not JSON") from None
            if not isinstance(data, dict) or not isinstance(data.get("generated_at"), str):
                raise VerificationError("record_payload", "record has no generated_at time")
            state["data"] = data

        def output_hash() -> str:
            stated = output_hashes(state["data"])
            if content_sha256 not in stated:
                recorded = ", ".join(stated) or "no output hash"
                raise VerificationError(
                    "output_hash",
                    f"content sha256 {content_sha256} differs from the recorded {recorded}",
                )
            return f"content sha256 {content_sha256} matches the record"

        def record_signature() -> str:
            sig = evidence.signature
            key = trust.key(sig.get("key_id", ""))
            if key is None:
                raise VerificationError(
                    "record_signature",
                    f"unknown key id {sig.get('key_id')!r}; not among the trusted keys",
                )
            if key.purpose != "records":
                raise VerificationError(
                    "record_signature",
                    f"key {key.key_id} is a {key.purpose!r} key, not a record key",
                )
            if key.alg != sig.get("alg"):
                raise VerificationError(
                    "record_signature",
                    f"signature says alg {sig.get('alg')!r}, key {key.key_id} is {key.alg}",
                )
            verify_record_signature(key, evidence.payload, sig.get("sig", ""))
            state["key"] = key
            how = (
                "pinned"
                if trust.pinned
                else "embedded in the bundle (not pinned: pass --key to pin)"
            )
            return f"{key.alg} signature by key {key.key_id}, {how}"

        def key_validity() -> str:
            key, generated_at = state["key"], state["data"]["generated_at"]
            check_key_window(key, generated_at)
            return f"key {key.key_id} valid at {generated_at}"

        def checkpoint_signature() -> str:
            if evidence.origin != trust.origin:
                raise VerificationError(
                    "checkpoint_signature",
                    f"log origin {evidence.origin!r}, expected {trust.origin!r}",
                )
            cp = state["checkpoint"] = trust.checkpoint(evidence.checkpoint)
            return f"checkpoint of size {cp.size} signed by {trust.log_key.name}"

        def inclusion() -> str:
            cp: Checkpoint = state["checkpoint"]
            leaf = state["leaf"] = leaf_hash_of(evidence.payload, evidence.signature)
            verify_inclusion(leaf, evidence.index, cp.size, evidence.proof, cp.root_hash)
            root = base64.b64encode(cp.root_hash).decode()
            return f"leaf {evidence.index} is in the tree of size {cp.size} (root {root})"

        def consistency() -> str:
            assert trust.trusted_checkpoint is not None
            old_size, old_root = trust.trusted_checkpoint
            cp: Checkpoint = state["checkpoint"]
            if old_size > cp.size:  # the checkpoint proven against must be a prefix
                verify_consistency(
                    cp.size, old_size, cp.root_hash, old_root, consistency_proof or []
                )
                return f"tree of size {cp.size} is a prefix of {old_size}"
            verify_consistency(old_size, cp.size, old_root, cp.root_hash, consistency_proof or [])
            return f"tree of size {old_size} is a prefix of size {cp.size}"

        steps: list[tuple[str, Callable[[], Any]]] = [("record_payload", payload)]
        if content_sha256 is not None:
            steps.append(("output_hash", output_hash))
        steps += [
            ("record_signature", record_signature),
            ("key_validity", key_validity),
            ("checkpoint_signature", checkpoint_signature),
            ("inclusion_proof", inclusion),
        ]
        if trust.trusted_checkpoint is not None:
            steps.append(("consistency", consistency))

        def policy_step(policy: Policy) -> Callable[[], str | None]:
            def run() -> str | None:
                return policy(
                    Subject(
                        evidence,
                        trust,
                        state["data"],
                        state["leaf"],
                        state["checkpoint"],
                        history,
                    )
                )

            return run

        steps += [(p.name, policy_step(p)) for p in self.policies]
        failed = Report.run(steps, checks)
        about = dict(subject or {})
        if content_sha256 is not None:
            about.setdefault("content_sha256", content_sha256)
        if failed is not None:
            return Report(checks, None, about)
        cp = state["checkpoint"]
        outcome = Verified(
            payload=evidence.payload,
            signature=evidence.signature,
            leaf_hash=state["leaf"],
            checks=[Check(c.name, True, c.detail) for c in checks if c.result == PASS],
            index=evidence.index,
            tree_size=cp.size,
            checkpoint=evidence.checkpoint,
            proof=list(evidence.proof),
        )
        return Report(checks, outcome, about)


def first_verified(reports: Sequence[Report]) -> Report:
    """Of the reports for each record stating the same output, the verified one, else the
    first (the same output may have been generated more than once)."""
    return next((r for r in reports if r.verified), reports[0])


def verify_evidence(
    evidence: Evidence,
    trust: Trust,
    *,
    content_sha256: str | None = None,
    consistency_proof: Sequence[bytes] | None = None,
) -> Verified:
    """The base checks of :class:`Verifier` (no policies): return :class:`Verified` or
    raise the first failure."""
    report = Verifier(trust).verify(
        evidence, content_sha256=content_sha256, consistency_proof=consistency_proof
    )
    return report.raise_for_failure()
