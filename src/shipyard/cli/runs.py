"""``shipyard runs list|show|compare|delete|expire``"""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli.output import console, duration, emit_json, fmt, table, when
from shipyard.cli.state import state
from shipyard.tracking.models import Run

app = typer.Typer(help="Runs: search, inspect, compare and delete.", no_args_is_help=True)


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: list[str] = typer.Option(
        None, "--experiment", "-e", help="Experiment name or id (repeatable)."
    ),
    filter_: str = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.model = 'lgbm'\""
    ),
    order_by: list[str] = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.auc DESC' (repeatable)."
    ),
    max_results: int = typer.Option(50, "--max-results", "-n", help="Page size."),
    page_token: str = typer.Option(None, "--page-token", help="Token printed for the next page."),
    metric: list[str] = typer.Option(
        None, "--metric", "-m", help="Metric column to show (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Search runs (MLflow filter syntax), newest first unless ordered."""
    page = state(ctx).backend.tracking.search_runs(
        experiment or None, filter_, order_by or None, max_results, page_token
    )
    if as_json:
        emit_json({"runs": page.runs, "next_page_token": page.next_page_token})
        return
    metric_keys = metric or _headline_metrics(page.runs)
    table(
        "Runs",
        ["id", "name", "status", "started", "duration", *metric_keys],
        [
            (
                r.id,
                r.name,
                r.status,
                when(r.start_time),
                duration(r.start_time, r.end_time),
                *[r.metrics.get(k) for k in metric_keys],
            )
            for r in page.runs
        ],
    )
    if page.next_page_token:
        console.print(f"more: --page-token {page.next_page_token}")


def _headline_metrics(found: list[Run], limit: int = 4) -> list[str]:
    """Up to ``limit`` metric columns, validation metrics before training ones."""
    keys = sorted({k for r in found for k in r.metrics})
    ranked = sorted(keys, key=lambda k: (k.startswith(("training_", "curve_")), k))
    return ranked[:limit]


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (run_...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one run: attributes, params, latest metrics, tags and artifacts."""
    tracking = state(ctx).backend.tracking
    run = tracking.get_run(run_id)
    artifacts = tracking.list_artifacts(run_id)
    if as_json:
        emit_json({"run": run, "artifacts": artifacts})
        return
    table(
        f"Run {run.id}",
        ["field", "value"],
        [
            ("name", run.name),
            ("experiment", run.experiment_id),
            ("status", run.status),
            ("started", when(run.start_time)),
            ("duration", duration(run.start_time, run.end_time)),
            ("parent", run.parent_id),
            ("git commit", run.source.git_commit),
            ("entry point", run.source.entry_point),
        ],
    )
    if run.params:
        table("Params", ["key", "value"], sorted(run.params.items()))
    if run.metrics:
        table("Metrics (latest)", ["key", "value"], sorted(run.metrics.items()))
    if run.tags:
        table("Tags", ["key", "value"], sorted(run.tags.items()))
    if artifacts:
        table(
            "Artifacts",
            ["name", "size", "sha256"],
            [(a.name, a.size, a.digest[:12]) for a in artifacts],
        )


def _diff_rows(runs: list[Run], attr: str) -> list[tuple[Any, ...]]:
    keys = sorted({k for r in runs for k in getattr(r, attr)})
    return [(k, *[getattr(r, attr).get(k) for r in runs]) for k in keys]


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare runs side by side: params and latest metrics."""
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids to compare", param_hint="RUN_IDS")
    tracking = state(ctx).backend.tracking
    found = [tracking.get_run(r) for r in run_ids]
    if as_json:
        emit_json({"runs": found})
        return
    headers = ["key", *[f"{r.name}\n{r.id[-8:]}" for r in found]]
    table("Params", headers, _diff_rows(found, "params"))
    rows = _diff_rows(found, "metrics")
    best = []
    for row in rows:
        values = [v for v in row[1:] if isinstance(v, float) and v == v]
        best.append((*row, fmt(max(values)) if values else "-"))
    table("Metrics (latest)", [*headers, "max"], best)


@app.command("delete")
def delete(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., help="Run ids to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete runs (kept in the store for audit, hidden from lookups and searches)."""
    tracking = state(ctx).backend.tracking
    for run_id in run_ids:
        tracking.get_run(run_id)
    if not yes and not typer.confirm(f"delete {len(run_ids)} run(s)?"):
        raise typer.Abort
    for run_id in run_ids:
        tracking.delete_run(run_id)
        console.print(f"deleted {run_id}")


@app.command("expire")
def expire(
    ctx: typer.Context,
    silent_for: str = typer.Option(
        "1h", "--silent-for", help="End RUNNING runs with no heartbeat or write for this long."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """End as KILLED the runs whose client died (no heartbeat for --silent-for)."""
    from shipyard.governance.identity import parse_duration

    expired = state(ctx).backend.tracking.expire_stale_runs(parse_duration(silent_for) / 1000)
    if as_json:
        emit_json({"expired": expired})
        return
    for run_id in expired:
        console.print(f"expired {run_id}")
    console.print(f"{len(expired)} run(s) ended as KILLED")
