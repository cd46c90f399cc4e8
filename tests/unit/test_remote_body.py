"""The remote client's request body (orjson) carries exactly what json.dumps did."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from provmark._internal.remote_sender import request_body
from provmark.canonical import Fragment, canonical_bytes, to_json_value


def reference(batch: list[dict[str, Any]]) -> bytes:
    """What the sender posted before orjson (and still posts when orjson cannot)."""
    return json.dumps(to_json_value(batch), separators=(",", ":"), ensure_ascii=False).encode()


def same(batch: list[dict[str, Any]]) -> None:
    body = request_body(batch)
    assert json.loads(body) == json.loads(reference(batch))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(), json_values, max_size=5), max_size=4))
def test_any_json_batch_is_sent_as_json_dumps_sent_it(batch: list[dict[str, Any]]) -> None:
    same(batch)


def test_fragments_are_spliced_as_their_canonical_bytes() -> None:
    params = {"temperature": 0.2, "seed": 7, "stop": ["\n", "é"], "big": 1e16}
    batch = [{"record_id": "a", "params": Fragment(params), "context": Fragment({"k": [1, 2]})}]
    body = request_body(batch)
    assert canonical_bytes(params) in body
    same(batch)


class Colour(enum.Enum):
    RED = "red"


class Name(str):
    pass


def test_what_orjson_writes_differently_takes_the_json_dumps_path() -> None:
    for odd in (
        {"x": math.nan},  # orjson would write null: a record changed, not refused
        {"x": 2**70},  # beyond 64 bits
        {"x": 2**60},  # beyond 2**53: json.dumps decides how it is written
        {"x": Name("subclass")},
        {"x": (1, 2)},
        {1: "an int key"},
    ):
        batch: list[dict[Any, Any]] = [odd]
        assert request_body(batch) == reference(batch)
    nan_body = request_body([{"x": math.nan}])
    assert b"NaN" in nan_body and b"null" not in nan_body
    # json.dumps refused an enum (the batch was kept and retried forever); orjson sends its value
    assert json.loads(request_body([{"c": Colour.RED}])) == [{"c": "red"}]
