"""Helpers for your own tests: a throwaway store, records to assert on, the store contract.

```python
import provmark
from provmark.testing import ephemeral, records_made

def test_summaries_are_recorded():
    with ephemeral() as pm:                       # temp SQLite file, throwaway keys
        summarize = pm.capture(model=provmark.Model("acme/sum"))(my_summarize)
        with records_made(pm) as made:
            summarize("a long text")
        rec = made.one()                          # exactly one record, signed and logged
        assert rec.model.name == "acme/sum" and rec.status == "ok"
        pm.verify(summarize("a long text"))       # verifies like production
```

Nothing here is a mock: ``ephemeral`` is the real store, writer, signer and log on a
temporary folder; the records are read back from the log. :class:`StoreContract`
(``provmark.testing.store_contract``, needs pytest) is the test suite every
``Store`` implementation must pass.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..client import Provmark
from ..record import Record

__all__ = ["Made", "StoreContract", "ephemeral", "records_made"]


@contextlib.contextmanager
def ephemeral(**options: Any) -> Iterator[Provmark]:
    """A real ``Provmark`` on a temporary SQLite file with throwaway keys; everything is
    deleted on exit. ``options`` are those of :func:`provmark.open` (``fingerprint=``,
    ``durable=``, ``policy=``, ...)."""
    options.setdefault("flush_interval", 0.005)
    with (
        tempfile.TemporaryDirectory(prefix="provmark-test-") as folder,
        Provmark.open(Path(folder) / "provmark.db", home=Path(folder) / "home", **options) as pm,
    ):
        yield pm


class Made:
    """The records appended to the log inside a :func:`records_made` block, in log order."""

    def __init__(self, pm: Provmark, start: int) -> None:
        self._pm = pm
        self._start = start
        self._end: int | None = None

    @property
    def records(self) -> list[Record]:
        self._pm.flush()
        store = self._pm.store
        return [s.record() for s in store.iter_records(self._start, self._end)]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def one(self) -> Record:
        """The only record made; AssertionError naming how many there were otherwise."""
        found = self.records
        if len(found) != 1:
            raise AssertionError(f"expected exactly one record, {len(found)} were made")
        return found[0]

    def where(self, **fields: Any) -> list[Record]:
        """Records whose top-level fields equal ``fields``; ``model="name"`` matches the
        model's name (``model_version=`` its version)."""
        out = []
        for rec in self.records:
            want = dict(fields)
            if "model" in want and want.pop("model") != rec.model.name:
                continue
            if "model_version" in want and want.pop("model_version") != rec.model.version:
                continue
            if all(getattr(rec, k) == v for k, v in want.items()):
                out.append(rec)
        return out


@contextlib.contextmanager
def records_made(pm: Provmark) -> Iterator[Made]:
    """Collect what a block of code records: ``with records_made(pm) as made: ...``;
    after the block ``made.records`` are the records it appended (signed and logged)."""
    pm.flush()
    made = Made(pm, pm.store.tree_size())
    yield made
    pm.flush()
    made._end = pm.store.tree_size()


def __getattr__(name: str) -> Any:
    if name == "StoreContract":  # imports pytest: only when asked for
        from .store_contract import StoreContract

        return StoreContract
    raise AttributeError(name)
