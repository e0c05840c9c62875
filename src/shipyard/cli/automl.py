"""``shipyard automl run``: a time-budgeted model search on a file, pipeline output or run
artifact, with a live view, a leaderboard and, on request, the winner registered."""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli.output import console, emit_json, table
from shipyard.cli.state import state

app = typer.Typer(
    help="AutoML: time-budgeted model search (the automl extra).", no_args_is_help=True
)


@app.command("run")
def run(
    ctx: typer.Context,
    data: str = typer.Option(
        ..., "--data", "-d", help="PATH.parquet|csv, prun_…:STEP[:OUTPUT] or runs:/RUN/PATH."
    ),
    target: str = typer.Option(..., "--target", "-t", help="The column to predict."),
    task: str = typer.Option("binary", "--task", help="binary, multiclass or regression."),
    metric: str | None = typer.Option(
        None, "--metric", "-m", help="roc_auc, pr_auc, log_loss, recall_at_precision:0.9, …"
    ),
    time_budget: float = typer.Option(60.0, "--time-budget", "-b", help="Wall-clock seconds."),
    estimators: str | None = typer.Option(
        None, "--estimators", help="Comma-separated: lgbm,xgboost,hist_gb,logistic_regression,…"
    ),
    max_predict_ms: float | None = typer.Option(
        None, "--max-predict-ms", help="Median one-row prediction limit."
    ),
    max_model_mb: float | None = typer.Option(None, "--max-model-mb", help="Model size limit."),
    seed: int = typer.Option(0, "--seed"),
    max_trials: int | None = typer.Option(None, "--max-trials"),
    experiment: str = typer.Option("automl", "--experiment", "-e"),
    register: str | None = typer.Option(
        None, "--register", help="Register the winner as a candidate of this model."
    ),
    executor: str = typer.Option("local", "--executor", help="local or ray."),
    workers: int = typer.Option(1, "--workers", help="Ray workers sharing the study."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Search for the best model of TARGET within the time budget."""
    from shipyard.automl import search
    from shipyard.sdk import context
    from shipyard.sdk.data import load_source, split_target

    context.replace(state(ctx).settings)
    source = load_source(data)
    X, y = split_target(source.frame, target)
    limits: dict[str, float] = {}
    if max_predict_ms is not None:
        limits["max_predict_ms"] = max_predict_ms
    if max_model_mb is not None:
        limits["max_model_mb"] = max_model_mb
    result = search(
        X,
        y,
        task=task,  # type: ignore[arg-type]  # checked by search
        metric=metric,
        time_budget=time_budget,
        estimators=[e.strip() for e in estimators.split(",") if e.strip()] if estimators else None,
        constraints=limits,
        seed=seed,
        max_trials=max_trials,
        experiment=experiment,
        register=register,
        executor=executor,  # type: ignore[arg-type]  # checked by search
        n_workers=workers,
        storage=storage,
        progress=not as_json,
        data_source=source.name,
    )
    if as_json:
        emit_json(result.to_dict())
        return
    _show(result.to_dict())


def _show(summary: dict[str, Any]) -> None:
    metric = summary["metric"]
    table(
        f"Leaderboard ({metric}, cross-validated)",
        ["trial", "estimator", metric, "±", "folds", "fit s", "run"],
        [
            [
                r["trial"],
                r["estimator"],
                r["cv_score"],
                r["cv_std"],
                r["folds"],
                r["fit_seconds"],
                r["run_id"],
            ]
            for r in summary["leaderboard"]
        ],
    )
    budget, trials, candidate = summary["budget"], summary["trials"], summary["candidate"]
    console.print(
        f"best: [bold]{summary['estimator']}[/] {metric} {summary['score']:.4f}; "
        f"{trials['total']} trials ({trials['complete']} complete, {trials['pruned']} pruned, "
        f"{trials['interrupted']} cut by the budget); {budget['used_seconds']:.1f} s of "
        f"{budget['seconds']:g} s; predicts one row in {candidate['predict_ms']:.3f} ms, "
        f"{candidate['model_mb']:.3f} MB"
        + ("" if candidate["constraints_met"] else " [bold red](constraints NOT met)[/]"),
        highlight=False,
    )
    console.print(f"run {summary['run_id']}; study {summary['study']['name']}", highlight=False)
    if "model_version" in summary:
        mv = summary["model_version"]
        console.print(f"registered {mv['name']} version {mv['version']} ({mv['state']})")
