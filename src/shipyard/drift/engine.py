"""Per-column drift tests with Evidently's automatic choice of test, and PSI for bankers.

Defaults follow Evidently's data drift preset (0.7, ``_get_default_stattest``) so results can
be compared side by side. Columns are numeric or categorical by dtype; ``n`` is the number
of distinct values in reference and current together. With at most 1,000 reference rows:
numeric columns get a two-sample Kolmogorov-Smirnov test (drift at p <= 0.05), categorical
ones and numeric ones with n <= 5 chi-squared (p < 0.05), or a two-proportion z-test when
n <= 2. Above 1,000 rows: numeric columns get the Wasserstein distance divided by the
reference's standard deviation (at least 0.001), categorical ones and numeric ones with
n <= 5 the Jensen-Shannon distance, both drifting at >= 0.1. The dataset drifts when at
least half of the columns do. PSI (10 reference-quantile bins, smoothed) is reported on
every column: a banking convention (0.10 investigate, 0.25 act), not a test.

A :class:`PreparedReference` does the reference's share of the work once (sorted values,
standard deviation, quantile edges, category counts), so each window only sorts or counts
its own values; the Wasserstein distance of two sorted samples is an exact linear pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.drift.methods import METHODS

Array = np.ndarray[Any, Any]
PSI_BANDS = (0.10, 0.25)
PSI_BINS = 10
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

    def to_html(self) -> str:
        """A self-contained page: the verdict and one row per column."""
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(c.column)}</td><td>{c.kind}</td><td>{c.method}</td>"
            f"<td>{c.statistic:.4g}</td><td>{'' if c.p_value is None else f'{c.p_value:.3g}'}</td>"
            f"<td>{c.threshold:g}</td><td>{'' if c.psi is None else f'{c.psi:.3f}'}</td>"
            f"<td style='color:{'#cf222e' if c.drifted else '#1a7f37'}'>"
            f"{'drift' if c.drifted else 'ok'}</td><td>{escape(c.note)}</td></tr>"
            for c in self.columns
        )
        verdict = "dataset drift" if self.dataset_drift else "no dataset drift"
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2rem}td,th{padding:.2rem .6rem;"
            "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
            f"<h1>Drift report: {verdict}</h1><p>{len(self.drifted_columns)} of "
            f"{len(self.columns)} columns drifted ({self.drift_share:.0%}); reference "
            f"{self.reference_rows:,} rows, current {self.current_rows:,} rows.</p>"
            "<table><tr><th>column</th><th>kind</th><th>method</th><th>statistic</th>"
            "<th>p-value</th><th>threshold</th><th>PSI</th><th>verdict</th><th>note</th></tr>"
            f"{rows}</table></body></html>"
        )


def _numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


@dataclass(frozen=True)
class PreparedColumn:
    """What a drift check needs from one reference column, computed once."""

    name: str
    numeric: bool
    rows: int  # non-null values
    distinct: int
    values: pd.Series  # non-null reference values (for the small-sample tests)
    sorted: Array | None  # numeric: sorted values
    std: float
    psi_edges: Array | None  # numeric: inner edges of the reference-quantile bins
    psi_shares: Array | None
    counts: pd.Series  # value -> count (categorical, and numeric with few values)

    @classmethod
    def of(cls, name: str, column: pd.Series) -> PreparedColumn:
        """Prepare one reference column."""
        numeric = _numeric(column)
        values = column.dropna() if column.hasnans else column
        if numeric and len(values):
            data = np.sort(values.to_numpy(dtype="float64"))
            distinct = int(np.count_nonzero(np.diff(data))) + 1
            edges = np.unique(_sorted_quantiles(data, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
            shares = np.diff(
                np.searchsorted(data, edges, side="right"), prepend=0, append=len(data)
            )
            # Value counts only where a test or the binning uses them (few distinct values,
            # or a small sample): hashing a million floats is the costliest step otherwise.
            few = distinct <= 20 or len(data) <= SMALL_REFERENCE
            counts = values.value_counts() if few else pd.Series(dtype="int64")
            return cls(
                name,
                True,
                len(data),
                distinct,
                values,
                data,
                float(np.std(data)),
                edges,
                shares / len(data),
                counts,
            )
        counts = values.value_counts()
        return cls(name, numeric, len(values), len(counts), values, None, 0.0, None, None, counts)


@dataclass
class PreparedReference:
    """A reference data set ready to be compared with many windows."""

    columns: dict[str, PreparedColumn]
    rows: int

    @classmethod
    def of(
        cls, frame: pd.DataFrame, columns: Sequence[str] | None = None, workers: int | None = None
    ) -> PreparedReference:
        """Sort, count and bin each column of the reference once."""
        names = [str(c) for c in (columns if columns is not None else frame.columns)]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"drift columns missing from the reference: {', '.join(missing)}"
            )
        with ThreadPoolExecutor(workers or _workers()) as pool:
            prepared = list(
                pool.map(lambda c: PreparedColumn.of(c, cast("pd.Series", frame[c])), names)
            )
        return cls({p.name: p for p in prepared}, len(frame))

    def compare(
        self,
        current: pd.DataFrame,
        *,
        method: str = "auto",
        threshold: float | None = None,
        drift_share: float = 0.5,
        workers: int | None = None,
    ) -> DriftReport:
        """Drift of ``current`` against this reference, column by column."""
        if method not in METHODS:
            raise InvalidInputError(
                f"drift method must be one of {', '.join(METHODS)}; got {method!r}"
            )
        missing = [c for c in self.columns if c not in current.columns]
        if missing:
            raise InvalidInputError(
                f"drift columns missing from the data: {', '.join(missing)}",
                columns=",".join(missing),
            )
        with ThreadPoolExecutor(workers or _workers()) as pool:
            results = list(
                pool.map(
                    lambda p: _compare(p, current[p.name], method, threshold), self.columns.values()
                )
            )
        share = sum(r.drifted for r in results) / len(results) if results else 0.0
        return DriftReport(
            results, share, bool(results) and share >= drift_share, self.rows, len(current)
        )


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


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
    prepared = PreparedReference.of(reference, names)
    return prepared.compare(current, method=method, threshold=threshold, drift_share=drift_share)


def column_drift(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    *,
    method: str = "auto",
    threshold: float | None = None,
) -> ColumnDrift:
    """One column's drift by ``method`` (``auto``: Evidently's choice), with its PSI."""
    return _compare(PreparedColumn.of(name, reference), current, method, threshold)


def auto_method(ref: PreparedColumn, current: pd.Series) -> str:
    """Evidently's default test for a column (see the module docstring)."""
    distinct = ref.distinct
    if distinct <= 5:  # only then can the current values change the choice
        distinct = len(ref.counts.index.union(pd.Index(current.unique())))
    if ref.rows <= SMALL_REFERENCE:
        if ref.numeric and distinct > 5:
            return "ks"
        return "chisquare" if distinct > 2 else "z"
    if ref.numeric and distinct > 5:
        return "wasserstein"
    return "jensenshannon"


def _compare(
    ref: PreparedColumn, column: pd.Series, method: str, threshold: float | None
) -> ColumnDrift:
    cur = column.dropna() if column.hasnans else column
    chosen = auto_method(ref, cur) if method == "auto" else method
    spec = DRIFT_METHODS[chosen]
    limit = spec.threshold if threshold is None else threshold
    kind = "numeric" if ref.numeric else "categorical"
    if ref.rows == 0 or cur.empty:
        side = "reference" if ref.rows == 0 else "current"
        return ColumnDrift(
            ref.name,
            kind,
            chosen,
            float("nan"),
            None,
            limit,
            False,
            None,
            f"no non-null values in the {side} data",
        )
    numeric_cur = _numeric(column)
    cur_sorted = np.sort(cur.to_numpy(dtype="float64")) if ref.numeric and numeric_cur else None
    # Counting a million values costs as much as a test: count once, only where needed.
    cur_counts = cur.value_counts() if cur_sorted is None or ref.distinct <= 20 else None
    current = Current(cur, cur_sorted, cur_counts, _psi_of(ref, cur_counts, cur_sorted))
    if spec.numeric_only and (ref.sorted is None or cur_sorted is None):
        raise InvalidInputError(f"column {ref.name!r} is categorical: {chosen} needs numbers")
    statistic, p_value = spec.compute(ref, current)
    note = "constant in the reference" if spec.scaled_by_std and ref.std == 0 else ""
    if p_value is not None:
        drifted = p_value <= limit if spec.at_or_below else p_value < limit
    else:
        drifted = bool(statistic >= limit)
    return ColumnDrift(
        ref.name,
        kind,
        chosen,
        float(statistic),
        p_value,
        limit,
        bool(drifted),
        float(current.psi),
        note,
    )


@dataclass(frozen=True)
class Current:
    """One window's column, prepared once for whichever method judges it."""

    values: pd.Series  # non-null values
    sorted: Array | None  # numeric: sorted values
    counts: pd.Series | None  # value -> count, where counted
    psi: float


@dataclass(frozen=True)
class DriftMethod:
    """One drift statistic: its default threshold and how it is computed and judged.

    A test (``p_value``) drifts when its p-value is below the threshold (at or below with
    ``at_or_below``, as Evidently's KS); a distance drifts at or above it.
    """

    threshold: float
    compute: Callable[[PreparedColumn, Current], tuple[float, float | None]]
    p_value: bool = False
    numeric_only: bool = False
    at_or_below: bool = False
    scaled_by_std: bool = False


def _wasserstein(ref: PreparedColumn, cur: Current) -> tuple[float, float | None]:
    if ref.sorted is None or cur.sorted is None:  # checked by _compare (numeric_only)
        raise InvalidInputError(f"column {ref.name!r} is categorical: wasserstein needs numbers")
    return wasserstein_sorted(ref.sorted, cur.sorted) / max(ref.std, 0.001), None


def _ks(ref: PreparedColumn, cur: Current) -> tuple[float, float | None]:
    from scipy.stats import ks_2samp

    if ref.sorted is None or cur.sorted is None:  # checked by _compare (numeric_only)
        raise InvalidInputError(f"column {ref.name!r} is categorical: ks needs numbers")
    test = ks_2samp(ref.sorted, cur.sorted)
    return float(test.statistic), float(test.pvalue)


def _jensen_shannon(ref: PreparedColumn, cur: Current) -> tuple[float, float | None]:
    from scipy.spatial.distance import jensenshannon

    ref_p, cur_p = _binned(ref, cur.counts, cur.sorted)
    return float(jensenshannon(ref_p, cur_p)), None


def _chi_square_method(ref: PreparedColumn, cur: Current) -> tuple[float, float | None]:
    return _chi_square(ref.counts, _counts(cur.values, cur.counts))


def _z_method(ref: PreparedColumn, cur: Current) -> tuple[float, float | None]:
    return _z_test(ref.values, cur.values)


#: The drift methods by name (the defaults follow Evidently's preset; PSI's 0.1 is the
#: banking "investigate" band).
DRIFT_METHODS: dict[str, DriftMethod] = {
    "psi": DriftMethod(0.1, lambda ref, cur: (cur.psi, None)),
    "ks": DriftMethod(0.05, _ks, p_value=True, numeric_only=True, at_or_below=True),
    "chisquare": DriftMethod(0.05, _chi_square_method, p_value=True),
    "z": DriftMethod(0.05, _z_method, p_value=True),
    "jensenshannon": DriftMethod(0.1, _jensen_shannon),
    "wasserstein": DriftMethod(0.1, _wasserstein, numeric_only=True, scaled_by_std=True),
}
DEFAULT_THRESHOLD = {name: method.threshold for name, method in DRIFT_METHODS.items()}
#: Tests drift at a small p-value; distances at a large value.
P_VALUE_METHODS = {name for name, method in DRIFT_METHODS.items() if method.p_value}


# statistics --------------------------------------------------------------------------------


def _sorted_quantiles(data: Array, q: Array) -> Array:
    """``np.quantile(data, q)`` (linear interpolation) for data already sorted, without
    partitioning it again."""
    position = q * (len(data) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(data) - 1)
    result: Array = data[low] + (data[high] - data[low]) * (position - low)
    return result


def wasserstein_sorted(u: Array, v: Array) -> float:
    """The first Wasserstein distance of two sorted samples, exactly, in one linear pass.

    It is the integral of |Q_u(t) - Q_v(t)| over t in [0, 1]; both quantile functions are
    steps at i/n and j/m, so the integral is a sum over the merged steps (kept as integers
    k/(n*m), merged by a stable sort that sees two sorted runs).
    """
    n, m = len(u), len(v)
    if n == m:
        return float(np.mean(np.abs(u - v)))
    steps = np.concatenate(
        [np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n]
    )
    steps.sort(kind="stable")
    left = np.concatenate([[0], steps[:-1]])
    keep = steps > left  # a step both functions share appears twice: drop the empty one
    left, width = left[keep], (steps[keep] - left[keep]).astype("float64") / (float(n) * m)
    return float(np.sum(np.abs(u[left // m] - v[left // n]) * width))


def psi(reference: Array, current: Array, bins: int = PSI_BINS) -> float:
    """Population stability index over ``bins`` reference-quantile bins, smoothed."""
    prepared = PreparedColumn.of("x", pd.Series(reference))
    return _psi_of(prepared, None, np.sort(np.asarray(current, dtype="float64")))


def _counts(values: pd.Series, counted: pd.Series | None) -> pd.Series:
    return counted if counted is not None else values.value_counts()


def _psi_of(ref: PreparedColumn, cur_counts: pd.Series | None, cur_sorted: Array | None) -> float:
    if ref.psi_edges is not None and ref.psi_shares is not None and cur_sorted is not None:
        counts = np.diff(
            np.searchsorted(cur_sorted, ref.psi_edges, side="right"),
            prepend=0,
            append=len(cur_sorted),
        )
        return _psi(ref.psi_shares, counts / len(cur_sorted))
    if cur_counts is None:
        raise InvalidInputError("categorical drift needs the current counts")
    ref_n, cur_n = _aligned(ref.counts, cur_counts)
    return _psi(ref_n / ref_n.sum(), cur_n / cur_n.sum())


def _psi(ref_p: Array, cur_p: Array) -> float:
    ref_p = np.clip(ref_p, EPSILON, None)
    cur_p = np.clip(cur_p, EPSILON, None)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def _aligned(ref: pd.Series, cur: pd.Series) -> tuple[Array, Array]:
    """Counts of both samples over the union of their values."""
    keys = ref.index.union(cur.index)
    return (
        ref.reindex(keys, fill_value=0).to_numpy(dtype="float64"),
        cur.reindex(keys, fill_value=0).to_numpy(dtype="float64"),
    )


def _binned(
    ref: PreparedColumn, cur_counts: pd.Series | None, cur_sorted: Array | None
) -> tuple[Array, Array]:
    """Evidently's bins: Sturges' histogram over both samples for numbers with more than 20
    distinct reference values, else the shares of each value."""
    if ref.sorted is not None and cur_sorted is not None and ref.distinct > 20:
        lo = min(ref.sorted[0], cur_sorted[0])
        hi = max(ref.sorted[-1], cur_sorted[-1])
        count = int(np.ceil(np.log2(ref.rows + len(cur_sorted)) + 1))
        edges = np.linspace(lo, hi, count + 1) if hi > lo else np.array([lo - 0.5, lo + 0.5])
        ref_h = np.diff(
            np.searchsorted(ref.sorted, edges[1:-1], side="left"), prepend=0, append=ref.rows
        )
        cur_h = np.diff(
            np.searchsorted(cur_sorted, edges[1:-1], side="left"), prepend=0, append=len(cur_sorted)
        )
        return ref_h / ref.rows, cur_h / len(cur_sorted)
    if cur_counts is None:
        raise InvalidInputError("categorical drift needs the current counts")
    ref_n, cur_n = _aligned(ref.counts, cur_counts)
    return ref_n / ref.rows, cur_n / cur_n.sum()


def _chi_square(ref_counts: pd.Series, cur_counts: pd.Series) -> tuple[float, float]:
    """Current counts against the counts the reference's shares predict (Evidently's test;
    values never seen in the reference get a tiny expected count instead of zero)."""
    from scipy.stats import chisquare

    ref_n, cur_n = _aligned(ref_counts, cur_counts)
    expected = np.clip(ref_n / ref_n.sum(), EPSILON * 1e-2, None)
    expected = expected / expected.sum() * cur_n.sum()
    test = chisquare(cur_n, expected)
    return float(test.statistic), float(test.pvalue)


def _z_test(ref: pd.Series, cur: pd.Series) -> tuple[float, float]:
    """Two-proportion z-test on the reference's most frequent value."""
    from scipy.stats import norm

    top = ref.mode().iloc[0]
    p1 = float((ref == top).mean())
    p2 = float((cur == top).mean())
    n1, n2 = len(ref), len(cur)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (p1 - p2) / se
    return float(z), float(2 * norm.sf(abs(z)))
