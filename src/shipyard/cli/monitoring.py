"""``shipyard feedback send``: ground-truth labels for logged predictions."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console, emit_json
from shipyard.cli.state import state
from shipyard.sdk.gates import read_frame
from shipyard.sdk.monitoring import feedback_items

feedback_app = typer.Typer(help="Delayed labels for logged predictions.", no_args_is_help=True)


@feedback_app.command("send")
def send(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="Deployment name (as served)."),
    labels: Path = typer.Argument(..., help="File with request_id, label[, row] (.csv, .parquet)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Store labels; unknown request ids and repeats are listed, not stored."""
    frame = read_frame(labels, "labels")
    result = state(ctx).backend.feedback.submit(deployment, feedback_items(frame))
    if as_json:
        emit_json(result.to_dict())
        return
    console.print(f"{result.accepted} labels stored for {result.deployment}")
    for item in result.rejected[:20]:
        console.print(f"  refused {item.request_id} row {item.row}: {item.reason}")
    if len(result.rejected) > 20:
        console.print(f"  ... and {len(result.rejected) - 20} more refused")
