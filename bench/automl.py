"""AutoML: held-out score at 30 s and 120 s budgets, Shipyard against FLAML and against an
untuned LightGBM, on the same splits, run one after the other on this machine.

    .venv/bin/python bench/automl.py [--budgets 30,120] [--sets breast_cancer,digits,fraud,imbalanced]

Sets: scikit-learn's breast_cancer (ROC AUC) and digits (log loss), the demo's synthetic
card-fraud set (50,000 rows, ~1.7% fraud, ROC AUC) and make_classification(n_samples=50_000,
weights=[0.98]) (ROC AUC); 80/20 stratified split, seed 0. FLAML (2.x, its own environment
.venv-flaml, built by `make bench`) searches lgbm, xgboost, rf, extra_tree and lrl1 with the
same metric; Shipyard searches its default families through a store in a temporary folder
(every trial a tracked child run). Wall time is the search call's own; the budget must not
be overrun by more than 10%.

Goal (issue 14): held-out score equal to or better than FLAML on every set at both budgets,
never below the untuned default, no overrun past 10%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import report
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
FLAML_PYTHON = HERE.parent / ".venv-flaml" / "bin" / "python"


def load(name: str) -> tuple[pd.DataFrame, pd.Series, str, str]:
    """Features, target, metric, task."""
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        return X, y, "roc_auc", "binary"
    if name == "digits":
        X, y = load_digits(return_X_y=True, as_frame=True)
        return X, y, "log_loss", "multiclass"
    if name == "fraud":
        from shipyard.demo.data import FEATURES, LABEL, make_transactions

        frame = make_transactions(50_000, seed=7)
        return frame[FEATURES], frame[LABEL], "roc_auc", "binary"
    if name == "imbalanced":
        X, y = make_classification(n_samples=50_000, weights=[0.98], random_state=0)
        return (
            pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]),
            pd.Series(y),
            "roc_auc",
            "binary",
        )
    raise SystemExit(f"unknown set {name}")


def held_out(metric: str, y: pd.Series, proba: np.ndarray) -> float:
    if metric == "log_loss":
        return float(log_loss(y, proba, labels=np.arange(proba.shape[1])))
    return float(roc_auc_score(y, proba[:, 1]))


def better(metric: str, a: float, b: float) -> bool:
    """a is at least as good as b (to the 4th decimal, the precision quoted)."""
    return round(a, 4) <= round(b, 4) if metric == "log_loss" else round(a, 4) >= round(b, 4)


def untuned(Xtr, ytr, Xte, yte, metric) -> float:
    import lightgbm

    model = lightgbm.LGBMClassifier(random_state=0, verbose=-1).fit(Xtr, ytr)
    return held_out(metric, yte, model.predict_proba(Xte))


def shipyard_run(Xtr, ytr, Xte, yte, metric, task, budget, home) -> dict:
    import shipyard
    import shipyard.automl

    shipyard.set_uri(str(home))
    started = time.perf_counter()
    result = shipyard.automl.search(
        Xtr, ytr, task=task, metric=metric, time_budget=budget, seed=0, experiment="bench"
    )
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "score": held_out(metric, yte, result.predict_proba(Xte)),
        "best": result.estimator,
        "trials": result.report["trials"]["total"],
    }


def flaml_run(folder: Path, metric: str, task: str, budget: float) -> dict:
    out = subprocess.run(
        [str(FLAML_PYTHON), str(HERE / "_flaml_run.py"), str(folder), str(budget), metric, task],
        check=True,
        capture_output=True,
        text=True,
        timeout=budget * 3 + 120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", default="30,120")
    parser.add_argument("--sets", default="breast_cancer,digits,fraud,imbalanced")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    if not FLAML_PYTHON.exists():
        raise SystemExit(f"FLAML's environment is missing ({FLAML_PYTHON}): run `make bench`")
    rows = []
    failures = []
    for name in args.sets.split(","):
        X, y, metric, task = load(name)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
        base = untuned(Xtr, ytr, Xte, yte, metric)
        with tempfile.TemporaryDirectory(prefix="bench-automl-") as tmp:
            folder = Path(tmp)
            Xtr.assign(target=ytr.to_numpy()).to_parquet(folder / "train.parquet")
            Xte.assign(target=yte.to_numpy()).to_parquet(folder / "test.parquet")
            for budget in budgets:
                ours = shipyard_run(
                    Xtr, ytr, Xte, yte, metric, task, budget, folder / f"store-{budget:g}"
                )
                theirs = flaml_run(folder, metric, task, budget)
                overrun = ours["wall"] / budget - 1
                ok = (
                    better(metric, ours["score"], theirs["score"])
                    and better(metric, ours["score"], base)
                    and overrun <= 0.10
                )
                if not ok:
                    failures.append(f"{name} at {budget:g} s")
                rows.append(
                    (
                        f"{name} ({metric}), {budget:g} s",
                        f"shipyard {ours['score']:.4f} ({ours['best']}, {ours['trials']} trials, "
                        f"{ours['wall']:.1f} s, overrun {max(overrun, 0):.1%}) | "
                        f"FLAML {theirs['score']:.4f} ({theirs['best']}, {theirs['wall']:.1f} s) | "
                        f"untuned LightGBM {base:.4f} | {'met' if ok else 'NOT met'}",
                    )
                )
                print(rows[-1][0], rows[-1][1], flush=True)
    report("AutoML: held-out score (lower is better for log_loss)", rows)
    print(
        f"\ngoal met on {len(rows) - len(failures)} of {len(rows)}"
        + (f"; not on {', '.join(failures)}" if failures else "")
    )


if __name__ == "__main__":
    sys.exit(main())
