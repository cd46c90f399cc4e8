"""I-JSON limits at the door (provmark.jsonlimits) and the batch validation
(provmark.capture.intake)."""

from __future__ import annotations

import enum
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provmark.canonical import canonical_bytes
from provmark.capture.intake import validate_batch
from provmark.errors import InvalidBatch, RecordError
from provmark.jsonlimits import MAX_DEPTH, MAX_SAFE_INTEGER, check_json, replace_unstorable, walk
from provmark.record import new_record_id, now_utc


def refused(value: Any, path: str = "") -> RecordError:
    with pytest.raises(RecordError) as info:
        check_json(value, path)
    return info.value


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"usage": {"latency_ms": math.inf}}, "usage.latency_ms", "not a JSON number"),
        ({"x": [1, -math.inf]}, "x[1]", "not a JSON number"),
        ({"p": math.nan}, "p", "not a JSON number"),
        ({"extra": {"n": 9007199254740993}}, "extra.n", "outside"),
        ({"params": {"n": 2**70}}, "params.n", "outside"),
        ({"n": -(2**53)}, "n", "outside"),
        ({"model": {"name": "a\x00b"}}, "model.name", "NUL"),
        ({"tags": {"k": "\ud800"}}, "tags.k", "surrogate"),
        ({"tags": {"a\x00": "v"}}, "tags.a\x00", "NUL"),
        ({"x": 1.5, "y": object()}, "y", "not a JSON value"),
    ],
)
def test_values_outside_i_json_are_refused_naming_the_field(
    value: Any, field: str, words: str
) -> None:
    err = refused(value)
    assert err.field == field and words in err.reason


def test_values_inside_the_limits_pass_and_encode_exactly() -> None:
    fine = {
        "a": [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0.1, 1e300, -0.0, True, None, "é\U0001f600"],
        "e": enum.Enum("Color", "RED").RED,
        "u": uuid.uuid4(),
    }
    check_json(fine)
    canonical_bytes({"a": fine["a"]})  # the writer takes whatever the door takes


def test_depth_limit_is_checked_without_recursion() -> None:
    ok: Any = "leaf"
    for _ in range(MAX_DEPTH - 1):
        ok = [ok]
    check_json(ok)
    deep: Any = "leaf"
    for _ in range(100_000):  # far past Python's recursion limit
        deep = {"a": deep}
    err = refused({"extra": deep})
    assert err.field.startswith("extra.a") and "nested deeper" in err.reason


def test_renderings_replace_what_no_store_can_hold() -> None:
    assert replace_unstorable("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    assert replace_unstorable("plain") == "plain"


def draft(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_id": new_record_id(),
        "generated_at": now_utc(),
        "model": {"name": "acme/m"},
        "output": {"sha256": "0" * 64},
    }
    record.update(overrides)
    return record


def test_a_batch_is_all_or_nothing_and_names_every_invalid_record() -> None:
    good = draft()
    with pytest.raises(InvalidBatch) as info:
        validate_batch([good, draft(usage={"latency_ms": math.inf}), draft(), "nope"])
    assert info.value.errors == [
        ("[1].usage.latency_ms", "inf is not a JSON number (NaN and Infinity are not)"),
        ("[3]", "each record must be a JSON object"),
    ]


def test_duplicate_ids_in_one_batch_are_refused_naming_them() -> None:
    first = draft()
    with pytest.raises(InvalidBatch) as info:
        validate_batch([first, draft(), dict(first)])
    (field, reason), *_ = info.value.errors
    assert (
        field == "[2].record_id" and "duplicate of [0]" in reason and first["record_id"] in reason
    )


_EDGES = [2**53 - 1, 2**53, -(2**53 - 1), -(2**53), 2**70, 0.5, -0.0, 1e16]
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from(_EDGES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from(["a", "\x00", "\ud800", "\udfff", "é", "\U0001f600", "["])),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=40,
)


@given(_VALUES)
@settings(max_examples=300, deadline=None)
def test_the_fast_path_accepts_only_what_the_exact_walk_accepts(value: Any) -> None:
    try:
        walk(value, max_depth=6)
        exact = None
    except RecordError as exc:
        exact = exc
    try:
        check_json(value, max_depth=6)
        fast = None
    except RecordError as exc:
        fast = exc
    assert (exact is None) == (fast is None)
    if exact is not None and fast is not None:
        assert (fast.field, fast.reason) == (exact.field, exact.reason)
