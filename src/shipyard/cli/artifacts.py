"""``shipyard artifacts list|get``"""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console, emit_json, table, when
from shipyard.cli.state import state

app = typer.Typer(help="Run artifacts: list and download.", no_args_is_help=True)


@app.command("list")
def list_artifacts(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List a run's artifacts."""
    found = state(ctx).backend.tracking.list_artifacts(run_id)
    if as_json:
        emit_json(found)
        return
    table(
        f"Artifacts of {run_id}",
        ["name", "size", "media type", "sha256", "logged"],
        [(a.name, a.size, a.media_type, a.digest[:16], when(a.created_at)) for a in found],
    )


@app.command("get")
def get(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id."),
    name: str = typer.Argument(..., help="Artifact name, e.g. model/model.skops."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="File or folder to write."),
) -> None:
    """Download an artifact, verified against its sha256."""
    path = state(ctx).backend.tracking.download_artifact(run_id, name, output)
    console.print(f"wrote {path}")
