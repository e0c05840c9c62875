from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.core.errors import InvalidInputError
from shipyard.core.ids import id_timestamp_ms, id_to_uuid, new_id, parse_id


def test_ids_are_prefixed_and_sort_in_creation_order() -> None:
    ids = [new_id("run") for _ in range(2000)]
    assert all(i.startswith("run_") and len(i) == 30 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_id_maps_to_a_stable_uuid_and_timestamp() -> None:
    run_id = new_id("run")
    assert id_to_uuid(run_id) == id_to_uuid(run_id)
    assert id_to_uuid(run_id).int == parse_id(run_id)[1]
    assert abs(id_timestamp_ms(run_id) - __import__("time").time() * 1000) < 60_000


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "run",
        "run_",
        "RUN_01m8j07665dv9xfct2x23tvv6b",
        "run_01m8j07665dv9xfct2x23tvv6",
        "run_01m8j07665dv9xfct2x23tvv6!",
        42,
    ],
)
def test_malformed_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        parse_id(bad)  # type: ignore[arg-type]


def test_wrong_prefix_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="exp_"):
        parse_id(new_id("run"), "exp")


@given(st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_any_valid_prefix_round_trips(prefix: str) -> None:
    assert parse_id(new_id(prefix), prefix)[0] == prefix
