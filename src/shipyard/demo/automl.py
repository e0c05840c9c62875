"""The demo's AutoML act: a time-budgeted search for a challenger to the fraud champion,
inside the model's governance (its allowed estimators, from the project spec), every trial
tracked, the winner registered as a candidate with its search report and gated against the
champion like any other version."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from shipyard.core.actor import acting_as
from shipyard.core.errors import PipelineError
from shipyard.demo.data import FEATURES, LABEL


def search_challenger(run: Any, policy: dict[str, Any], *, budget: float, console: Console) -> int:
    """Search on the pipeline's training split as ana, register the winner as a candidate of
    ``fraud`` and gate it on the holdout as CI would; return its version."""
    import shipyard.automl
    from shipyard.sdk import context

    backend = context.current().get_backend()
    train, test = run.load("split", "output_0"), run.load("split", "output_1")
    split = next(s for s in run.record.steps if s.step == "split")
    digest = next(o.digest for o in split.outputs if o.name == "output_0")
    console.print(
        f"\n[bold]AutoML[/]: {budget:g} s to find a challenger on {len(train):,} rows "
        "(every trial a tracked child run; the study in the store's database)"
    )
    with acting_as("ana"):
        result = shipyard.automl.search(
            train[FEATURES],
            train[LABEL],
            task="binary",
            metric="roc_auc",
            time_budget=budget,
            constraints={"max_predict_ms": 10},
            seed=7,
            experiment="fraud-training",
            register="fraud",
            progress=console.is_terminal,
            data_source=f"pipeline_run:{run.id}/split:output_0 sha256:{digest}",
        )
    table = Table(
        title=f"AutoML leaderboard ({result.report['folds']}-fold ROC AUC, top 5)",
        header_style="bold",
    )
    for column in ("trial", "estimator", "roc_auc", "±", "predict ms"):
        table.add_column(column)
    for row in result.leaderboard[:5]:
        table.add_row(
            str(row["trial"]),
            row["estimator"],
            f"{row['cv_score']:.4f}",
            f"{row['cv_std']:.4f}",
            f"{row.get('predict_ms', float('nan')):.2f}",
        )
    console.print(table)
    report = result.report
    trials = report["trials"]
    console.print(
        f"{trials['total']} trials ({trials['pruned']} pruned early, {trials['infeasible']} over "
        f"the 10 ms latency limit) in {report['budget']['used_seconds']:.1f} s of {budget:g} s"
    )
    for note in report["skipped"]:
        console.print(f"  not searched: {note}")
    mv = result.model_version
    if mv is None:
        raise PipelineError("the AutoML winner was not registered")
    with acting_as("ci"):
        gated = backend.gates.evaluate("fraud", mv.version, policy, test)
    failed = ", ".join(c.name for c in gated.failed_checks)
    console.print(
        f"AutoML candidate fraud v{mv.version} ({result.estimator}, CV ROC AUC "
        f"{result.score:.4f}, {report['candidate']['predict_ms']:.2f} ms a row) "
        + ("[green]passes[/] the gates" if gated.passed else f"[red]fails[/] the gates ({failed})")
        + "; its model card carries the search report"
    )
    return mv.version
