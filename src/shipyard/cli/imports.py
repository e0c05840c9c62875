"""``shipyard import mlflow --from <tracking URI or mlruns folder>``"""

from __future__ import annotations

import os

import typer

from shipyard.cli.output import console, emit_json, spinner, table
from shipyard.cli.state import state

app = typer.Typer(help="Bring data over from other tools.", no_args_is_help=True)


@app.command("mlflow")
def import_mlflow(
    ctx: typer.Context,
    source: str = typer.Option(
        ...,
        "--from",
        help="An MLflow tracking server (http://host:5000) or an mlruns folder.",
    ),
    token: str = typer.Option(
        None,
        "--token",
        help="Bearer token for the MLflow server (default: MLFLOW_TRACKING_TOKEN).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import experiments, runs (every metric point), artifacts and registered models.

    Importing again skips what an earlier import brought. The report lists what could not
    be brought over and why (exit 0 all the same; 1 only if nothing could be read).
    """
    from shipyard.migrate.mlflow import import_mlflow as run_import
    from shipyard.migrate.sources import open_source

    backend = state(ctx).backend
    reader = open_source(source, token or os.environ.get("MLFLOW_TRACKING_TOKEN"))
    progress = spinner(quiet=as_json)
    try:
        with progress:
            task = progress.add_task(f"importing from {source}", total=None)

            def advance(what: str, count: int) -> None:
                progress.advance(task, count)
                done = int(progress.tasks[0].completed)
                progress.update(task, description=f"importing from {source}: {done} {what}")

            report = run_import(reader, backend.tracking, backend.registry, advance)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    if as_json:
        emit_json(report.as_dict())
        return
    table(
        f"Imported from {source}",
        ["what", "imported", "already there"],
        [
            ("experiments", report.experiments, ""),
            ("runs", report.runs, report.runs_skipped),
            ("metric points", report.metric_points, ""),
            ("params", report.params, ""),
            ("artifacts", f"{report.artifacts} ({report.artifact_bytes:,} bytes)", ""),
            ("logged models", report.logged_models, ""),
            ("registered models", report.models, ""),
            ("versions", report.versions, report.versions_skipped),
            ("aliases", report.aliases, ""),
        ],
    )
    if report.not_brought:
        console.print("[yellow]Not brought over:[/]")
        for line in report.not_brought:
            console.print(f"  - {line}", highlight=False)
