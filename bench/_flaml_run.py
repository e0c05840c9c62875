"""One FLAML search on a split the AutoML benchmark wrote; prints wall time and the held-out
score as JSON. Runs in FLAML's own environment (.venv-flaml), as bench/automl.py asks.

    .venv-flaml/bin/python bench/_flaml_run.py SPLIT_DIR BUDGET METRIC TASK
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from flaml import AutoML
from sklearn.metrics import log_loss, roc_auc_score

warnings.simplefilter("ignore")
folder, budget, metric, task = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
train = pd.read_parquet(folder / "train.parquet")
test = pd.read_parquet(folder / "test.parquet")
X, y = train.drop(columns="target"), train["target"]
Xt, yt = test.drop(columns="target"), test["target"]
automl = AutoML()
started = time.perf_counter()
automl.fit(
    X,
    y,
    task="classification",
    metric=metric,
    time_budget=budget,
    seed=0,
    verbose=0,
    estimator_list=["lgbm", "xgboost", "rf", "extra_tree", "lrl1"],
)
wall = time.perf_counter() - started
proba = automl.predict_proba(Xt)
score = (
    log_loss(yt, proba, labels=sorted(y.unique()))
    if metric == "log_loss"
    else roc_auc_score(yt, proba[:, 1])
)
print(json.dumps({"wall": wall, "score": float(score), "best": automl.best_estimator}))
