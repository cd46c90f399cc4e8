"""canonical_bytes must equal the reference RFC 8785 encoder on every JSON value."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from provmark.canonical import Fragment, canonical_bytes
from provmark.errors import CanonicalizationError

SAFE = 2**53 - 1

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500)
@given(json_values)
def test_equals_reference(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except UnicodeEncodeError:
        with pytest.raises(CanonicalizationError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


@given(json_values)
def test_round_trip_is_stable(value: Any) -> None:
    try:
        raw = canonical_bytes(value)
    except CanonicalizationError:
        return
    assert canonical_bytes(json.loads(raw)) == raw


@pytest.mark.parametrize(
    "value",
    [1e21, 1e-7, 2.0, -0.0, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 123456789012345680.0],
)
def test_float_forms(value: float) -> None:
    assert canonical_bytes({"x": value}) == rfc8785.dumps({"x": value})


def test_non_bmp_keys_sort_by_utf16() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2, "a": 3}
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_marker_collision_falls_back_to_reference() -> None:
    value = {"a": 0.5, "b": "\x00provmark-splice#0", "c": [0.25]}
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_fragment_is_spliced() -> None:
    inner = {"python": "3.11", "q": [1, 2.5]}
    assert canonical_bytes({"ctx": Fragment(inner), "t": 0.2}) == rfc8785.dumps(
        {"ctx": inner, "t": 0.2}
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"seed": 2**60 + 1}, "params.seed"),
        ({"t": float("nan")}, "params.t"),
        ({"o": object()}, "params.o"),
        ({"n": {1: 2}}, "params.n.1"),
    ],
)
def test_errors_name_the_field(value: Any, field: str) -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonical_bytes(value, "params")
    assert info.value.field == field
