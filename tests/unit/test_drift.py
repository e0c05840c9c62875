"""The drift engine: Evidently's choice of test, PSI, and the awkward columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.drift.engine import column_drift, drift_report, psi


def _frames(rows: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"num": rng.normal(size=rows), "cat": rng.choice(list("abcdefg"), rows)})
    cur = pd.DataFrame(
        {"num": rng.normal(loc=shift, size=rows), "cat": rng.choice(list("abcdefg"), rows)}
    )
    return ref, cur


@pytest.mark.parametrize(
    ("rows", "numeric", "categorical"),
    [(500, "ks", "chisquare"), (5000, "wasserstein", "jensenshannon")],
)
def test_auto_picks_evidentlys_test_by_reference_size(
    rows: int, numeric: str, categorical: str
) -> None:
    ref, cur = _frames(rows, 1)
    report = drift_report(ref, cur)
    methods = {c.column: c.method for c in report.columns}
    assert methods == {"num": numeric, "cat": categorical}
    assert not report.dataset_drift and report.drifted_columns == []


def test_a_shift_is_detected_and_psi_is_reported() -> None:
    ref, cur = _frames(5000, 2, shift=0.8)
    report = drift_report(ref, cur)
    assert report.drifted_columns == ["num"]
    num = report.columns[0]
    assert num.psi is not None and num.psi > 0.25  # "act" band
    assert report.drift_share == 0.5 and report.dataset_drift  # half the columns: Evidently's rule
    assert report.to_dict()["drifted_columns"] == ["num"]


def test_psi_of_identical_samples_is_zero_and_grows_with_shift() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=10_000)
    assert psi(ref, ref) == pytest.approx(0.0)
    assert psi(ref, ref + 0.1) < psi(ref, ref + 0.5) < psi(ref, ref + 1.0)


def test_constant_all_null_and_unseen_categories() -> None:
    ref = pd.DataFrame({"c": [1.0] * 2000, "n": [np.nan] * 2000, "k": ["x", "y"] * 1000})
    same = column_drift("c", ref["c"], pd.Series([1.0] * 2000), method="wasserstein")
    moved = column_drift("c", ref["c"], pd.Series([2.0] * 2000), method="wasserstein")
    assert not same.drifted and moved.drifted and "constant" in moved.note
    nulls = column_drift("n", ref["n"], pd.Series(np.ones(2000)))
    assert not nulls.drifted and "no non-null values in the reference" in nulls.note
    unseen = column_drift("k", ref["k"], pd.Series(["z"] * 2000))
    assert unseen.drifted and unseen.kind == "categorical"


def test_bad_arguments_are_clear() -> None:
    ref, cur = _frames(100, 4)
    with pytest.raises(InvalidInputError, match="drift method must be one of"):
        drift_report(ref, cur, method="magic")
    with pytest.raises(InvalidInputError, match="missing from the data: nope"):
        drift_report(ref, cur, ["nope"])
    with pytest.raises(InvalidInputError, match="categorical: ks needs numbers"):
        drift_report(ref, cur, ["cat"], method="ks")


@pytest.mark.parametrize(("n", "m"), [(1000, 1000), (1000, 737), (3, 5000), (5000, 1)])
def test_sorted_wasserstein_equals_scipys(n: int, m: int) -> None:
    from scipy.stats import wasserstein_distance

    from shipyard.drift.engine import wasserstein_sorted

    rng = np.random.default_rng(n + m)
    u, v = np.sort(rng.normal(size=n)), np.sort(rng.gamma(2.0, size=m))
    assert wasserstein_sorted(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-9)


def test_numbers_and_categories_follow_evidentlys_rules() -> None:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(9)
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=4000),
            "few": rng.integers(0, 4, 4000),
            "cat": rng.choice(list("abc"), 4000),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.3, size=3000),
            "few": rng.integers(0, 4, 3000),
            "cat": rng.choice(list("abcd"), 3000),
        }
    )
    report = {c.column: c for c in drift_report(ref, cur).columns}
    # Numbers with at most 5 values are compared as categories, as Evidently does.
    assert (report["x"].method, report["few"].method, report["cat"].method) == (
        "wasserstein",
        "jensenshannon",
        "jensenshannon",
    )
    expected = wasserstein_distance(ref["x"], cur["x"]) / max(np.std(ref["x"]), 0.001)
    assert report["x"].statistic == pytest.approx(expected, rel=1e-9)
    shares = [ref["cat"].value_counts(normalize=True).get(k, 0.0) for k in "abcd"]
    now = [cur["cat"].value_counts(normalize=True).get(k, 0.0) for k in "abcd"]
    assert report["cat"].statistic == pytest.approx(jensenshannon(shares, now), rel=1e-9)
    assert report["cat"].drifted  # a new category at a quarter of the rows


def test_every_declared_drift_method_has_one_implementation() -> None:
    from shipyard.drift.engine import DEFAULT_THRESHOLD, DRIFT_METHODS, P_VALUE_METHODS
    from shipyard.drift.methods import METHODS

    assert set(DRIFT_METHODS) == set(METHODS) - {"auto"}
    assert {"ks", "chisquare", "z"} == P_VALUE_METHODS
    assert DEFAULT_THRESHOLD == {
        "psi": 0.1,
        "ks": 0.05,
        "chisquare": 0.05,
        "z": 0.05,
        "jensenshannon": 0.1,
        "wasserstein": 0.1,
    }
