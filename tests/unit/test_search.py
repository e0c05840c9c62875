from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.core.errors import InvalidInputError
from shipyard.tracking.search import (
    Comparison,
    OrderBy,
    build_query,
    decode_page_token,
    encode_keyset_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)


def test_mlflow_style_filter_parses() -> None:
    assert parse_filter("metrics.auc > 0.9 and params.model = 'lgbm'") == (
        Comparison("metric", "auc", ">", 0.9),
        Comparison("param", "model", "=", "lgbm"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metric.`val loss` <= 1e-3", Comparison("metric", "val loss", "<=", 0.001)),
        ('tags."team name" != "risk"', Comparison("tag", "team name", "!=", "risk")),
        (
            "attributes.status IN ('FINISHED', 'FAILED')",
            Comparison("attribute", "status", "IN", ("FINISHED", "FAILED")),
        ),
        ("params.model NOT IN ('a')", Comparison("param", "model", "NOT IN", ("a",))),
        ("params.model ILIKE '%GBM%'", Comparison("param", "model", "ILIKE", "%GBM%")),
        (
            "attributes.start_time >= 1700000000000",
            Comparison("attribute", "start_time", ">=", 1.7e12),
        ),
        ("metrics.val.loss < -2", Comparison("metric", "val.loss", "<", -2.0)),
        ("params.q = 'it''s'", Comparison("param", "q", "=", "it's")),
        ("metrics.auc == 1", Comparison("metric", "auc", "=", 1.0)),
    ],
)
def test_filter_forms(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == (expected,)


@pytest.mark.parametrize(
    "text",
    [
        "metrics.auc >",
        "metrics.auc > 'high'",
        "params.model > 'a'",
        "metrics.auc LIKE 0.9",
        "auc > 0.9",
        "foo.auc > 0.9",
        "metrics.auc > 0.9 or params.x = 'y'",
        "metrics.auc > 0.9; DROP TABLE runs",
        "metrics.auc > 0.9 and",
        "params.x = 'unterminated",
        "attributes.colour = 'red'",
        "params.x IN 'a'",
        "params.x IN ('a' 'b')",
        "metrics.auc > 0.9 params.x = 'y'",
    ],
)
def test_malformed_filters_raise_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidInputError, match="filter"):
        parse_filter(text)


def test_empty_filter_matches_everything() -> None:
    assert parse_filter(None) == () and parse_filter("  ") == ()


def test_order_by() -> None:
    assert parse_order_by(["metrics.auc DESC", "params.model", "attributes.start_time asc"]) == (
        OrderBy("metric", "auc", False),
        OrderBy("param", "model", True),
        OrderBy("attribute", "start_time", True),
    )
    for bad in (["metrics.auc DOWN"], ["auc"], [""]):
        with pytest.raises(InvalidInputError):
            parse_order_by(bad)


@given(st.integers(min_value=0, max_value=10**9))
def test_page_tokens_round_trip(offset: int) -> None:
    assert decode_page_token(encode_page_token(offset)) == (offset, None)


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=20),
            st.integers(-(2**53), 2**53),
        ),
        min_size=3,
        max_size=3,
    )
)
def test_keyset_tokens_round_trip_and_belong_to_their_order(after: list[object]) -> None:
    order = ("metrics.auc DESC",)
    assert decode_page_token(encode_keyset_token(order, after), order) == (0, tuple(after))
    with pytest.raises(InvalidInputError, match="another order_by"):
        decode_page_token(encode_keyset_token(order, after), ("params.model",))


@pytest.mark.parametrize("token", ["garbage!", "eyJvZmZzZXQiOiAtMX0", "bnVsbA"])
def test_bad_page_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidInputError, match="page_token"):
        decode_page_token(token)


@pytest.mark.parametrize("max_results", [0, -1, 50_001, True, 2.5])
def test_max_results_bounds(max_results: object) -> None:
    with pytest.raises(InvalidInputError, match="max_results"):
        build_query(None, None, max_results, None)  # type: ignore[arg-type]
