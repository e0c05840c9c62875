"""``shipyard experiments ...``"""

from __future__ import annotations

import typer

from shipyard.cli.output import emit_json, table, when
from shipyard.cli.state import state

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


@app.command("list")
def list_experiments(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List experiments, oldest first."""
    found = state(ctx).backend.tracking.list_experiments()
    if as_json:
        emit_json(found)
        return
    table(
        "Experiments",
        ["id", "name", "created"],
        [(e.id, e.name, when(e.created_at)) for e in found],
    )
