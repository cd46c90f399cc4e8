"""provmark.testing as users use it in their own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import provmark
from provmark.testing import StoreContract, ephemeral, records_made


def test_ephemeral_is_a_real_store_that_cleans_up() -> None:
    with ephemeral() as pm:
        summarize = pm.capture(model=provmark.Model("acme/sum", version="1"))(lambda t: t[:5])
        with records_made(pm) as made:
            out = summarize("a long text")
        rec = made.one()
        assert rec.model.name == "acme/sum" and rec.status == "ok" and rec.log is not None
        assert pm.verify(out).record_id == rec.record_id
        folder = Path(pm.store.path).parent  # type: ignore[attr-defined]
        assert folder.exists()
    assert not folder.exists()


def test_records_made_sees_only_its_block_and_fails_loudly() -> None:
    with ephemeral() as pm:
        echo = pm.capture(model=provmark.Model("acme/echo"))(lambda t: t)
        echo("before")
        with records_made(pm) as made:
            echo("one")
            echo("two")
        echo("after")
        ones, twos = pm.find(output="one").records, pm.find(output="two").records
        assert [r.record_id for r in made] == [ones[0].record_id, twos[0].record_id]
        assert len(made.where(model="acme/echo", status="ok")) == 2
        with pytest.raises(AssertionError, match="exactly one record, 2 were made"):
            made.one()


def test_store_contract_is_importable_from_the_public_module() -> None:
    assert StoreContract.__name__ == "StoreContract"
    assert any(name.startswith("test_") for name in dir(StoreContract))


def test_find_takes_a_query_or_filters_not_both() -> None:
    from provmark.store.base import Query

    with ephemeral() as pm:
        echo = pm.capture(model=provmark.Model("acme/echo"))(lambda t: t)
        echo("one")
        echo("two")
        query = Query(model="acme/echo", limit=1, order="asc")
        first = pm.find(query).records
        assert [r.record_id for r in first] == [pm.find(order="asc", limit=1).records[0].record_id]
        with pytest.raises(provmark.ConfigError) as mixed:
            pm.find(query, model="acme/other")
        assert mixed.value.field == "query" and "model" in str(mixed.value)
