"""``shipyard predlog tail|export``"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from shipyard.cli.output import console, emit_json, table
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError

app = typer.Typer(help="The model server's prediction log.", no_args_is_help=True)


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(f"{what} must be an ISO date or time; got {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("tail")
def tail(
    ctx: typer.Context,
    deployment: str = typer.Option(None, "--deployment", "-d", help="Only this deployment."),
    rows: int = typer.Option(20, "--rows", "-n", min=1, max=100_000, help="Rows to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The newest logged predictions."""
    from shipyard.predlog.reader import read_log

    data = read_log(state(ctx).settings.predlog_root, deployment=deployment, last_rows=rows)
    records = data.to_pylist()
    if as_json:
        emit_json({"rows": records})
        return
    if not records:
        console.print("no predictions logged yet")
        return
    outputs = [c for c in data.column_names if c.startswith("output.")]
    inputs = [c for c in data.column_names if c.startswith("input.")][:3]
    cols = ["timestamp", "deployment", "version", "role", "request_id", *outputs, *inputs]
    table(
        f"Last {len(records)} predictions",
        [c.removeprefix("output.") for c in cols],
        [
            [
                r[c].isoformat(timespec="milliseconds") if c == "timestamp" else r.get(c)
                for c in cols
            ]
            for r in records
        ],
    )


@app.command("export")
def export(
    ctx: typer.Context,
    output: Path = typer.Argument(..., help="File to write: .parquet or .csv."),
    deployment: str = typer.Option(None, "--deployment", "-d", help="Only this deployment."),
    since: str = typer.Option(None, "--since", help="From this time (ISO 8601, UTC default)."),
    until: str = typer.Option(None, "--until", help="Before this time (ISO 8601)."),
) -> None:
    """Write the logged predictions (optionally a time window) to one file."""
    from shipyard.predlog.reader import export_log, read_log

    data = read_log(
        state(ctx).settings.predlog_root,
        deployment=deployment,
        since=_time(since, "--since"),
        until=_time(until, "--until"),
    )
    export_log(data, output)
    console.print(f"wrote {data.num_rows} rows to {output}")
