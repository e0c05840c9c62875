"""What runs at a silo: its data, its fingerprint, and the model's local training.

The model kind is logistic regression on numeric columns, trained by mini-batch SGD so that
FedAvg's mean of the silos' weights is a meaningful model and FedProx's proximal term
(mu/2 * ||w - w_global||^2) can be added to the loss. Tree ensembles do not average weight
by weight; they are refused with the reason (see :func:`check_columns`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError


@dataclass(frozen=True)
class SiloData:
    """One silo's rows, split once (seeded) into training and its own held-out part."""

    name: str
    columns: list[str]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    fingerprint: dict[str, Any]


def read_frame(path: str | Path) -> Any:
    """A silo's table from Parquet or CSV."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"silo data {p} does not exist")
    try:
        return pd.read_parquet(p) if p.suffix in {".parquet", ".pq"} else pd.read_csv(p)
    except Exception as exc:
        raise InvalidInputError(f"cannot read silo data {p}: {exc}".splitlines()[0]) from exc


def check_columns(frame: Any, label: str) -> list[str]:
    """The feature columns, or the reason this table cannot be trained on here."""
    import pandas as pd

    if label not in frame.columns:
        raise InvalidInputError(f"the silo data has no label column {label!r}")
    features = [c for c in frame.columns if c != label]
    if not features:
        raise InvalidInputError("the silo data has no feature columns")
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise InvalidInputError(
            "federated logistic regression takes numeric columns; encode "
            f"{', '.join(map(str, text[:5]))} at each silo first"
        )
    if frame[[*features, label]].isna().any().any():
        raise InvalidInputError("the silo data has missing values; impute them at the silo")
    values = set(pd.unique(frame[label]))
    if not values <= {0, 1}:
        raise InvalidInputError(f"label {label!r} must be 0/1 (binary); got {sorted(values)[:5]}")
    return [str(c) for c in features]


def fingerprint(frame: Any, label: str) -> dict[str, Any]:
    """What a silo says about its data: a hash and a profile, never rows. The profile holds
    aggregates only (count, mean, standard deviation, nulls): a minimum or a maximum is one
    customer's value, so neither leaves the silo."""
    import pandas as pd

    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        info: dict[str, Any] = {"dtype": str(series.dtype), "nulls": int(series.isna().sum())}
        if pd.api.types.is_numeric_dtype(series) and len(series.dropna()):
            clean = series.dropna().astype(float)
            info.update(mean=float(clean.mean()), std=float(clean.std(ddof=0)))
        columns[str(name)] = info
    return {
        "sha256": digest.hexdigest(),
        "rows": len(frame),
        "label_rate": float(frame[label].mean()),
        "profile": {"rows": len(frame), "columns": columns},
    }


def load_silo(name: str, path: str | Path, label: str, holdout: float, seed: int) -> SiloData:
    """Read, check and split a silo's data (the split is seeded per silo)."""
    frame = read_frame(path)
    return split_silo(name, frame, label, holdout, seed)


def split_silo(name: str, frame: Any, label: str, holdout: float, seed: int) -> SiloData:
    """Check and split a frame already in memory."""
    columns = check_columns(frame, label)
    if len(frame) < 10:
        raise InvalidInputError(f"silo {name} has {len(frame)} rows; at least 10 are needed")
    X = frame[columns].to_numpy(dtype=np.float64)
    y = frame[label].to_numpy().astype(np.float64)
    salt = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    order = np.random.default_rng([seed, salt]).permutation(len(frame))
    cut = max(1, round(len(frame) * holdout))
    test, train = order[:cut], order[cut:]
    return SiloData(name, columns, X[train], y[train], X[test], y[test], fingerprint(frame, label))


def pooled_scaler(
    profiles: list[dict[str, Any]], columns: list[str]
) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of every column over all silos' rows, from their profiles
    (exact: pooled from each silo's count, mean and variance)."""
    total = sum(int(p["n"]) for p in profiles)
    means, scales = [], []
    for i, _ in enumerate(columns):
        mean = sum(p["n"] * p["mean"][i] for p in profiles) / total
        second = sum(p["n"] * (p["var"][i] + p["mean"][i] ** 2) for p in profiles) / total
        var = max(second - mean**2, 0.0)
        means.append(mean)
        scales.append(math.sqrt(var) if var > 1e-24 else 1.0)
    return means, scales


def moments(data: SiloData) -> dict[str, Any]:
    """Count, mean and variance of the training columns (for the pooled scaler)."""
    return {
        "n": len(data.y_train),
        "mean": data.X_train.mean(axis=0).tolist(),
        "var": data.X_train.var(axis=0).tolist(),
    }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))))


def initial_weights(n_features: int) -> list[np.ndarray]:
    """Zero weights and intercept: every silo starts from the same model."""
    return [np.zeros(n_features), np.zeros(1)]


def local_fit(
    weights: list[np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    l2: float,
    proximal_mu: float,
    seed: int,
) -> tuple[list[np.ndarray], float]:
    """Mini-batch SGD on the log loss from the global weights; returns the new weights and
    the training loss. With ``proximal_mu`` > 0 this is FedProx's local objective."""
    w, b = weights[0].astype(np.float64).copy(), weights[1].astype(np.float64).copy()
    w0, b0 = w.copy(), b.copy()
    rng = np.random.default_rng(seed)
    n = len(y)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            err = _sigmoid(X[idx] @ w + b) - y[idx]
            grad_w = X[idx].T @ err / len(idx) + l2 * w + proximal_mu * (w - w0)
            grad_b = np.array([err.mean()]) + proximal_mu * (b - b0)
            w -= learning_rate * grad_w
            b -= learning_rate * grad_b
    return [w, b], log_loss(y, _sigmoid(X @ w + b))


def predict(weights: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """The positive class's probability."""
    return _sigmoid(X @ weights[0] + weights[1][0])


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def evaluate(
    weights: list[np.ndarray], X: np.ndarray, y: np.ndarray, threshold: float
) -> dict[str, float]:
    """What each silo reports of a model on its own held-out rows: ROC AUC, log loss,
    accuracy and, at the decision threshold, the rates fairness by silo compares."""
    from sklearn.metrics import roc_auc_score

    p = predict(weights, X)
    decided = p >= threshold
    positives, negatives = y == 1, y == 0
    out = {
        "log_loss": log_loss(y, p),
        "accuracy": float(np.mean(decided == positives)),
        "selection_rate": float(decided.mean()),
        "true_positive_rate": float(decided[positives].mean()) if positives.any() else math.nan,
        "false_positive_rate": float(decided[negatives].mean()) if negatives.any() else math.nan,
        "rows": float(len(y)),
    }
    out["roc_auc"] = float(roc_auc_score(y, p)) if positives.any() and negatives.any() else math.nan
    return out


def to_estimator(
    weights: list[np.ndarray], columns: list[str], means: list[float], scales: list[float]
) -> Any:
    """The global model as a scikit-learn pipeline (stored with skops like any model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_ = np.asarray(means, dtype=np.float64)
    scaler.scale_ = np.asarray(scales, dtype=np.float64)
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = len(columns)
    scaler.feature_names_in_ = np.asarray(columns, dtype=object)
    scaler.n_samples_seen_ = 0
    model = LogisticRegression()
    model.coef_ = np.asarray(weights[0], dtype=np.float64).reshape(1, -1)
    model.intercept_ = np.asarray(weights[1], dtype=np.float64).reshape(1)
    model.classes_ = np.array([0, 1])
    model.n_features_in_ = len(columns)
    model.n_iter_ = np.array([0])
    return Pipeline([("scale", scaler), ("model", model)])
