"""Runs of agent frameworks (LangChain, LlamaIndex) as records with lineage.

A framework reports nested runs (an agent, the chains and tools inside it, the model
calls inside those) with a run id and a parent run id. Model calls become records;
chosen enclosing runs (root runs and agents) become records too, whose ``parents`` are
the records made inside them — so the lineage graph of an agent run's record leads to
every model call it made. Runs that are not recorded pass their records up to the
nearest recorded ancestor.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from ..canonical import canonical_bytes
from ..capture.core import Recording
from ..errors import CanonicalizationError
from .common import CaptureTarget, plain, policy_failure


def jsonable(value: Any) -> Any:
    """A JSON value for ``value`` (framework objects dumped, anything else as text)."""
    value = plain(value)
    try:
        canonical_bytes(value)
        return value
    except (CanonicalizationError, TypeError, ValueError):
        return json.loads(json.dumps(value, default=str, allow_nan=False))


@dataclass
class Run:
    parent: str | None
    rec: Recording | None
    children: list[str] = field(default_factory=list)


class RunTree:
    """Open runs by id; thread-safe (frameworks call back from several threads)."""

    def __init__(self, pm: CaptureTarget) -> None:
        self.pm = pm
        self.runs: dict[str, Run] = {}
        # every run's parent until its root ends: a run that ended early (a method that
        # returned a generator) still links the records made later below it
        self.parents: dict[str, str | None] = {}
        self.roots: dict[str, str] = {}
        self.lock = threading.Lock()
        self.last_record_id: str | None = None

    def open(self, run_id: Any, parent_id: Any, rec: Recording | None) -> None:
        if rec is not None:
            rec.__enter__()
        key, parent = str(run_id), (str(parent_id) if parent_id else None)
        with self.lock:
            self.runs[key] = Run(parent, rec)
            self.parents[key] = parent
            self.roots[key] = self.roots.get(parent, parent) if parent else key

    def is_open(self, run_id: Any) -> bool:
        with self.lock:
            return str(run_id) in self.runs

    def recording(self, run_id: Any) -> Recording | None:
        with self.lock:
            run = self.runs.get(str(run_id))
        return run.rec if run is not None else None

    def close(
        self,
        run_id: Any,
        *,
        output: Any = None,
        error: BaseException | None = None,
        what: str = "a run",
    ) -> str | None:
        """End a run: write its record (if it has one) with the records made inside it as
        parents, and hand the new id (or its children's) to the nearest recorded ancestor."""
        with self.lock:
            run = self.runs.pop(str(run_id), None)
        if run is None:
            return None
        made: list[str] = run.children
        if run.rec is not None:
            rec = run.rec
            try:
                for child in run.children:
                    rec.add_parent(child)
                if error is not None:
                    rec.__exit__(type(error), error, error.__traceback__)
                else:
                    rec.set_output(output)
                    rec.__exit__(None, None, None)
            except Exception as exc:
                policy_failure(self.pm, f"recording {what}", exc)
                return None
            made = [rec.record_id] if rec.record_id else []
            self.last_record_id = rec.record_id or self.last_record_id
        self._hand_up(run.parent, made)
        if run.parent is None:
            self._forget(str(run_id))
        return run.rec.record_id if run.rec is not None else None

    def _forget(self, root: str) -> None:
        with self.lock:
            done = [k for k, r in self.roots.items() if r == root and k not in self.runs]
            for key in done:
                self.roots.pop(key, None)
                self.parents.pop(key, None)

    def _hand_up(self, parent: str | None, made: list[str]) -> None:
        with self.lock:
            while parent is not None:
                up = self.runs.get(parent)
                if up is not None and up.rec is not None:
                    up.children.extend(made)
                    return
                parent = self.parents.get(parent)
