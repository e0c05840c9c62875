"""Per-column drift tests with Evidently's automatic choice of test, and PSI for bankers.

Defaults follow Evidently's data drift preset (shared/CONVENTIONS.md) so results can be
compared side by side: with at most 1,000 reference rows, numeric columns get a two-sample
Kolmogorov-Smirnov test, categorical (or at most 5 distinct values) chi-squared and binary
columns a two-proportion z-test, each drifting at p < 0.05; above 1,000 rows, numeric
columns get the Wasserstein distance normalised by the reference's standard deviation and
categorical ones the Jensen-Shannon distance, drifting above 0.1. The dataset drifts when
at least half of the columns do. PSI (10 reference-quantile bins, smoothed) is reported on
every column: a banking convention (0.10 investigate, 0.25 act), not a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError

METHODS = ("auto", "psi", "ks", "chisquare", "z", "jensenshannon", "wasserstein")
#: Distance methods drift above their threshold; tests drift when p < threshold.
P_VALUE_METHODS = {"ks", "chisquare", "z"}
DEFAULT_THRESHOLD = {
    "psi": 0.1,
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "jensenshannon": 0.1,
    "wasserstein": 0.1,
}
PSI_BANDS = (0.10, 0.25)
SMALL_REFERENCE = 1000
EPSILON = 1e-4


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict."""

    column: str
    kind: str  # "numeric" or "categorical"
    method: str
    statistic: float  # the distance, or the test statistic
    p_value: float | None
    threshold: float
    drifted: bool
    psi: float | None
    note: str = ""

    @property
    def score(self) -> float:
        """The number compared with the threshold (p-value for tests, distance otherwise)."""
        return self.p_value if self.p_value is not None else self.statistic


@dataclass(frozen=True)
class DriftReport:
    """Per-column results and the dataset verdict."""

    columns: list[ColumnDrift]
    drift_share: float
    dataset_drift: bool
    reference_rows: int
    current_rows: int
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns that drifted."""
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_columns": self.drifted_columns,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": [asdict(c) for c in self.columns],
            "notes": list(self.notes),
        }


def _numeric_dtype(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


def is_categorical(values: pd.Series) -> bool:
    """Object, string, boolean and category columns, and numbers with at most 5 values."""
    if not _numeric_dtype(values):
        return True
    return int(values.nunique(dropna=True)) <= 5


def auto_method(reference: pd.Series, categorical: bool) -> str:
    """Evidently's choice of test for a column, by reference size and type."""
    if len(reference) <= SMALL_REFERENCE:
        if categorical:
            return "z" if reference.nunique(dropna=True) <= 2 else "chisquare"
        return "ks"
    return "jensenshannon" if categorical else "wasserstein"


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    method: str = "auto",
    threshold: float | None = None,
    drift_share: float = 0.5,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column (see the module docstring)."""
    if method not in METHODS:
        raise InvalidInputError(f"drift method must be one of {', '.join(METHODS)}; got {method!r}")
    names = list(columns) if columns is not None else list(reference.columns)
    missing = [c for c in names if c not in reference.columns or c not in current.columns]
    if missing:
        raise InvalidInputError(
            f"drift columns missing from the data: {', '.join(map(str, missing))}",
            columns=",".join(map(str, missing)),
        )
    results = [
        column_drift(str(c), reference[c], current[c], method=method, threshold=threshold)
        for c in names
    ]
    share = sum(r.drifted for r in results) / len(results) if results else 0.0
    return DriftReport(
        results,
        share,
        bool(results) and share >= drift_share,
        len(reference),
        len(current),
    )


def column_drift(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    *,
    method: str = "auto",
    threshold: float | None = None,
) -> ColumnDrift:
    """One column's drift by ``method`` (``auto``: Evidently's choice), with its PSI."""
    categorical = is_categorical(reference)
    ref = reference.dropna()
    cur = current.dropna()
    chosen = auto_method(ref, categorical) if method == "auto" else method
    limit = DEFAULT_THRESHOLD[chosen] if threshold is None else threshold
    kind = "categorical" if categorical else "numeric"
    if ref.empty or cur.empty:
        side = "reference" if ref.empty else "current"
        return ColumnDrift(
            name,
            kind,
            chosen,
            float("nan"),
            None,
            limit,
            False,
            None,
            f"no non-null values in the {side} data",
        )
    if categorical:
        ref_p, cur_p, ref_n, cur_n = _category_distributions(ref, cur)
        psi_value = _psi(ref_p, cur_p)
    else:
        ref_v = ref.to_numpy(dtype="float64")
        cur_v = cur.to_numpy(dtype="float64")
        psi_value = psi(ref_v, cur_v)
    p_value: float | None = None
    note = ""
    if chosen == "psi":
        statistic = psi_value
    elif chosen == "jensenshannon":
        if not categorical:
            ref_p, cur_p = _histograms(ref_v, cur_v)
        statistic = _jensen_shannon(ref_p, cur_p)
    elif chosen in {"wasserstein", "ks"}:
        # Asked for by name, a test on numbers applies to any numeric column, even one with
        # few distinct values (which ``auto`` treats as categorical, like Evidently).
        if not _numeric_dtype(reference) or not _numeric_dtype(current):
            raise InvalidInputError(f"column {name!r} is categorical: {chosen} needs numbers")
        ref_v = ref.to_numpy(dtype="float64")
        cur_v = cur.to_numpy(dtype="float64")
        if chosen == "wasserstein":
            statistic, note = _wasserstein_norm(ref_v, cur_v)
        else:
            from scipy.stats import ks_2samp

            test = ks_2samp(ref_v, cur_v)
            statistic, p_value = float(test.statistic), float(test.pvalue)
    elif chosen == "chisquare":
        if not categorical:
            _, _, ref_n, cur_n = _category_distributions(ref, cur)
        statistic, p_value = _chi_square(ref_n, cur_n)
    else:  # z
        statistic, p_value = _z_test(ref, cur)
    drifted = (p_value < limit) if p_value is not None else bool(statistic > limit)
    return ColumnDrift(
        name, kind, chosen, float(statistic), p_value, limit, bool(drifted), float(psi_value), note
    )


# statistics --------------------------------------------------------------------------------


def psi(reference: np.ndarray[Any, Any], current: np.ndarray[Any, Any], bins: int = 10) -> float:
    """Population stability index over ``bins`` reference-quantile bins, smoothed."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
    )
    cur_counts = np.bincount(
        np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1
    )
    return _psi(ref_counts / len(reference), cur_counts / len(current))


def _psi(ref_p: np.ndarray[Any, Any], cur_p: np.ndarray[Any, Any]) -> float:
    ref_p = np.clip(ref_p, EPSILON, None)
    cur_p = np.clip(cur_p, EPSILON, None)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def _category_distributions(
    ref: pd.Series, cur: pd.Series
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    ref_counts = ref.astype(str).value_counts()
    cur_counts = cur.astype(str).value_counts()
    keys = ref_counts.index.union(cur_counts.index)
    ref_n = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64")
    cur_n = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64")
    return ref_n / ref_n.sum(), cur_n / cur_n.sum(), ref_n, cur_n


def _histograms(
    ref: np.ndarray[Any, Any], cur: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Shares per bin on shared edges (Sturges' rule over both samples, as Evidently bins)."""
    lo = min(ref.min(), cur.min())
    hi = max(ref.max(), cur.max())
    count = int(np.ceil(np.log2(len(ref) + len(cur)) + 1))
    edges = np.linspace(lo, hi if hi > lo else lo + 1, count + 1)
    ref_h = np.histogram(ref, edges)[0] / len(ref)
    cur_h = np.histogram(cur, edges)[0] / len(cur)
    return ref_h, cur_h


def _jensen_shannon(ref_p: np.ndarray[Any, Any], cur_p: np.ndarray[Any, Any]) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(np.clip(ref_p, EPSILON, None), np.clip(cur_p, EPSILON, None)))


def _wasserstein_norm(ref: np.ndarray[Any, Any], cur: np.ndarray[Any, Any]) -> tuple[float, str]:
    from scipy.stats import wasserstein_distance

    spread = float(np.std(ref))
    if spread == 0.0:
        # A constant reference: any move is drift; no move is none.
        moved = float(np.mean(np.abs(cur - ref[0])))
        return (float("inf") if moved > 0 else 0.0), "constant in the reference"
    return float(wasserstein_distance(ref, cur) / spread), ""


def _chi_square(ref_n: np.ndarray[Any, Any], cur_n: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Current counts against the counts the reference's shares predict."""
    from scipy.stats import chisquare

    expected = np.clip(ref_n / ref_n.sum(), EPSILON, None)
    expected = expected / expected.sum() * cur_n.sum()
    test = chisquare(cur_n, expected)
    return float(test.statistic), float(test.pvalue)


def _z_test(ref: pd.Series, cur: pd.Series) -> tuple[float, float]:
    """Two-proportion z-test on the reference's most frequent value."""
    from scipy.stats import norm

    top = ref.astype(str).mode().iloc[0]
    p1 = float((ref.astype(str) == top).mean())
    p2 = float((cur.astype(str) == top).mean())
    n1, n2 = len(ref), len(cur)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (p1 - p2) / se
    return float(z), float(2 * norm.sf(abs(z)))
