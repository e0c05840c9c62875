"""The demo's steps; each talks to Shipyard only through the public SDK."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.core.settings import Settings
from shipyard.demo.data import FEATURES, LABEL, SENSITIVE, make_transactions

EXPERIMENT = "fraud-demo"


def _candidates(seed: int) -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    categorical = ["merchant_category", "country", "age_band"]
    numeric = ["amount", "hour", "card_present"]
    linear = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                        (
                            "num",
                            Pipeline(
                                [
                                    ("log", FunctionTransformer(np.log1p)),
                                    ("scale", StandardScaler()),
                                ]
                            ),
                            numeric,
                        ),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=500, C=0.5, class_weight="balanced")),
        ]
    )
    boosted = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.08,
        max_leaf_nodes=31,
        categorical_features="from_dtype",
        early_stopping=True,
        scoring="loss",
        validation_fraction=0.15,
        random_state=seed,
    )
    return {"logistic_regression": linear, "gradient_boosting": boosted}


def run_demo(
    settings: Settings, *, rows: int = 50_000, seed: int = 7, console: Console | None = None
) -> list[str]:
    """Generate data, train two candidates with autolog, evaluate, and compare them."""
    from sklearn.metrics import average_precision_score, recall_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    import shipyard

    out = console or Console()
    shipyard.set_uri(settings.store_uri)
    out.print(f"[bold]Shipyard demo[/] - store: {shipyard.get_uri()}")
    started = time.perf_counter()
    data = make_transactions(rows, seed)
    train, test = train_test_split(data, test_size=0.25, random_state=seed, stratify=data[LABEL])
    out.print(
        f"generated {rows:,} transactions, fraud rate {data[LABEL].mean():.2%} "
        f"({int(data[LABEL].sum()):,} frauds)"
    )
    shipyard.autolog()
    run_ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="shipyard-demo-") as tmp:
        train_path = Path(tmp) / "train.parquet"
        train.to_parquet(train_path)
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        )
        candidates = _candidates(seed)
        with progress:
            task = progress.add_task("training candidates", total=len(candidates))
            for name, model in candidates.items():
                progress.update(task, description=f"training {name}")
                with shipyard.start_run(
                    experiment=EXPERIMENT, run_name=name, tags={"demo": "fraud"}
                ) as run:
                    shipyard.log_params(
                        {"rows": rows, "seed": seed, "features": ",".join(FEATURES)}
                    )
                    shipyard.log_artifact(train_path, "data/train.parquet")
                    model.fit(train[FEATURES], train[LABEL])
                    _log_curve(model)
                    proba = model.predict_proba(test[FEATURES])[:, 1]
                    threshold = float(np.quantile(proba, 0.98))
                    flagged = (proba >= threshold).astype(int)
                    shipyard.log_metrics(
                        {
                            "val_roc_auc": roc_auc_score(test[LABEL], proba),
                            "val_pr_auc": average_precision_score(test[LABEL], proba),
                            "val_recall_at_2pct": recall_score(test[LABEL], flagged),
                        }
                    )
                    by_group = {
                        f"val_flag_rate.{band.replace('+', 'plus')}": float(
                            flagged[(test[SENSITIVE] == band).to_numpy()].mean()
                        )
                        for band in test[SENSITIVE].cat.categories
                    }
                    shipyard.log_metrics(by_group)
                    run_ids.append(run.id)
                progress.advance(task)
    shipyard.autolog(disable=True)
    _print_comparison(out, run_ids)
    out.print(
        f"done in {time.perf_counter() - started:.1f}s - try: shipyard runs list -e {EXPERIMENT}"
    )
    return run_ids


def _log_curve(model: Any) -> None:
    """Log a boosting model's per-iteration scores as step metrics (a learning curve)."""
    import shipyard

    train_curve = getattr(model, "train_score_", None)
    valid_curve = getattr(model, "validation_score_", None)
    if train_curve is None:
        return
    # sklearn stores the negative loss as a score; log the loss itself.
    for step, value in enumerate(train_curve):
        shipyard.log_metric("curve_train_log_loss", -float(value), step=step)
    for step, value in enumerate(valid_curve if valid_curve is not None else ()):
        shipyard.log_metric("curve_valid_log_loss", -float(value), step=step)


def _print_comparison(out: Console, run_ids: list[str]) -> None:
    import shipyard

    page = shipyard.search_runs(
        EXPERIMENT,
        filter=f"attributes.run_id IN ({', '.join(repr(r) for r in run_ids)})",
        order_by=["metrics.val_roc_auc DESC"],
    )
    keys = ["val_roc_auc", "val_pr_auc", "val_recall_at_2pct", "training_roc_auc"]
    table = Table(title="Candidates (best first)", header_style="bold")
    for column in ["run", "name", *keys]:
        table.add_column(column)
    for run in page.runs:
        table.add_row(run.id, run.name, *[f"{run.metrics.get(k, float('nan')):.4f}" for k in keys])
    out.print(table)
