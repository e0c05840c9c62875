"""The demo: the fraud training pipeline, run twice (the second time from cache)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from shipyard.core.settings import Settings
from shipyard.pipelines.models import StepStatus


def run_demo(
    settings: Settings, *, rows: int = 50_000, seed: int = 7, console: Console | None = None
) -> str:
    """Run the pipeline, show its steps and the candidates, then rerun it from cache."""
    import shipyard
    from shipyard.demo.pipeline import fraud_training

    out = console or Console()
    shipyard.set_uri(settings.store_uri)
    out.print(f"[bold]Shipyard demo[/] - store: {shipyard.get_uri()}")
    started = time.perf_counter()

    def show(step: str, status: StepStatus) -> None:
        if status is StepStatus.RUNNING:
            out.print(f"  [blue]running[/] {step}")
        elif status is StepStatus.CACHED:
            out.print(f"  [cyan]Using cached version of {step}[/]")
        elif status is StepStatus.FAILED:
            out.print(f"  [red]failed[/] {step}")

    run = fraud_training.run(rows=rows, seed=seed, on_event=show)
    data = run.load("generate")
    out.print(
        f"pipeline run {run.id}: {rows:,} transactions, fraud rate "
        f"{data['is_fraud'].mean():.2%}, {len(run.record.steps)} steps in "
        f"{time.perf_counter() - started:.1f}s"
    )
    results = sorted(
        (run.load(s.step) for s in run.record.steps if s.step.startswith("evaluate")),
        key=lambda r: -r["val_roc_auc"],
    )
    table = Table(title="Candidates (best first)", header_style="bold")
    for column in ("candidate", "val_roc_auc", "val_pr_auc", "val_recall_at_2pct"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result["name"],
            *(f"{result[k]:.4f}" for k in ("val_roc_auc", "val_pr_auc", "val_recall_at_2pct")),
        )
    out.print(table)

    again = time.perf_counter()
    rerun = fraud_training.run(rows=rows, seed=seed)
    cached = sum(s.status is StepStatus.CACHED for s in rerun.record.steps)
    out.print(
        f"second run {rerun.id}: {cached}/{len(rerun.record.steps)} steps from cache in "
        f"{time.perf_counter() - again:.2f}s"
    )
    out.print(
        f"done in {time.perf_counter() - started:.1f}s - try: shipyard pipeline show {run.id}, "
        "shipyard runs list -e fraud_training"
    )
    return str(run.id)
