"""A full gate check on 1,000,000 evaluation rows: metrics, champion/challenger bootstrap
(1,000 resamples), fairness by group, schema validation and drift, end to end through
``shipyard.check_gates`` (scoring both models included). For scale, the bootstrap is also
timed the straightforward way (resampling rows and calling scikit-learn), extrapolated from
a few resamples.

    .venv-bench/bin/python bench/gates.py [--rows 1000000]

Goal (issue 5): the whole check under 10 s on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd
from _common import report
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

import shipyard

NUMERIC = [f"n{i}" for i in range(17)]
CODED = ["c0", "c1", "c2"]  # integer-coded categories (10 levels)
FEATURES = NUMERIC + CODED


def make(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(NUMERIC))), columns=NUMERIC)
    for col in CODED:
        frame[col] = rng.integers(0, 10, rows)
    frame["age_band"] = rng.choice(
        ["18-29", "30-49", "50-64", "65+"], rows, p=[0.2, 0.4, 0.25, 0.15]
    )
    logit = -3 + frame["n0"] + 0.8 * frame["n1"] - 0.5 * frame["n2"] + 0.2 * frame["c0"]
    frame["is_fraud"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


POLICY = {
    "label": "is_fraud",
    "checks": [
        {"metric": "roc_auc", "min": 0.7},
        {"metric": "recall_at_precision", "precision": 0.5, "min": 0.1},
        {"champion_challenger": {"metric": "roc_auc", "max_drop": 0.01, "resamples": 1000}},
        {"fairness": {"sensitive": "age_band", "reference": "30-49", "favourable": 0,
                      "adverse_impact_ratio_min": 0.8, "equalized_odds_difference_max": 0.1}},
        {"data_validation": {"schema": "training"}},
        {"drift": {"reference": "training", "method": "psi", "max": 0.2}},
    ],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=200_000)
    args = parser.parse_args()

    shipyard.set_uri(tempfile.mkdtemp(prefix="bench-gates-"))
    train = make(args.train_rows, 1)
    for version, seed in ((1, 0), (2, 1)):
        model = HistGradientBoostingClassifier(max_iter=60, random_state=seed)
        model.fit(train[FEATURES], train["is_fraud"])
        shipyard.register_model("fraud", model, train[FEATURES][:5], training_data=train[FEATURES],
                                convert_onnx=False)  # fmt: skip
        if version == 1:
            shipyard.set_alias("fraud", "champion", 1)
    evaluation = make(args.rows, 2)

    started = time.perf_counter()
    result = shipyard.check_gates("fraud", 2, POLICY, evaluation)
    total = time.perf_counter() - started

    rows = [(c.name, f"{c.seconds:6.2f} s  {c.status}") for c in result.checks]
    rows.append(
        ("scoring, loading, storing", f"{total - sum(c.seconds for c in result.checks):6.2f} s")
    )
    rows.append(("total", f"{total:6.2f} s (goal < 10 s)  passed={result.passed}"))
    report(f"Gate check on {args.rows:,} rows x {len(FEATURES)} features", rows)

    # The straightforward bootstrap: resample rows, call scikit-learn twice per resample.
    y = evaluation["is_fraud"].to_numpy()
    champion = shipyard.load_model("models:/fraud/1").predict_proba(evaluation[FEATURES])[:, 1]
    candidate = shipyard.load_model("models:/fraud/2").predict_proba(evaluation[FEATURES])[:, 1]
    rng = np.random.default_rng(0)
    probe = 5
    t0 = time.perf_counter()
    for _ in range(probe):
        i = rng.integers(0, len(y), len(y))
        roc_auc_score(y[i], candidate[i]) - roc_auc_score(y[i], champion[i])
    naive = (time.perf_counter() - t0) / probe * 1000
    cell = next(c.seconds for c in result.checks if c.kind == "champion_challenger")
    report("Champion/challenger bootstrap, 1,000 resamples", [
        ("Shipyard (bootstrap over cells)", f"{cell:8.2f} s"),
        ("row resampling + scikit-learn", f"{naive:8.1f} s (extrapolated from {probe})"),
        ("speed-up", f"{naive / cell:8.0f}x"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
