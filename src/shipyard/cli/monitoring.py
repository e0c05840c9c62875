"""``shipyard feedback send`` and ``shipyard monitor run|history``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from shipyard.cli.errors import EXIT_CHECK_FAILED
from shipyard.cli.output import console, emit_json, table
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError
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


monitor_app = typer.Typer(
    help="Monitors: drift, data quality, performance, health.", no_args_is_help=True
)


def _moment(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"expected an ISO date/time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    spec: Path = typer.Argument(..., help="Monitor YAML (kind: Monitor)."),
    at: str | None = typer.Option(
        None, "--at", help="Evaluate the window holding this time (default: the last full one)."
    ),
    windows: int = typer.Option(1, "--windows", min=1, max=10_000, help="This many windows back."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Evaluate windows and store their results (re-running a window replaces its result);
    exit 1 when a window raises an alert."""
    from shipyard.monitoring.service import window_of
    from shipyard.monitoring.spec import load_monitor

    monitor = load_monitor(spec)
    service = state(ctx).backend.monitors
    start, end = window_of(monitor, _moment(at))
    if at is None:  # the window in progress is not complete: take the one before
        start, end = start - (end - start), start
    step = end - start
    results = []
    with console.status(f"evaluating {windows} window(s) of {monitor.name}"):
        for i in range(windows - 1, -1, -1):
            results.append(service.run(monitor, start - i * step, end - i * step))
    if as_json:
        emit_json({"results": results})
    else:
        table(
            f"Monitor {monitor.name}",
            ["window", "rows", "status", "failed checks"],
            [
                (
                    r["window_start"],
                    r["rows"],
                    r["status"],
                    "; ".join(
                        f"{c['name']}: {c['message']}"
                        for c in r["checks"]
                        if c["status"] == "failed"
                    ),
                )
                for r in results
            ],
        )
    if any(r["status"] == "alert" for r in results):
        raise typer.Exit(EXIT_CHECK_FAILED)


@monitor_app.command("history")
def history(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Monitor name."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many windows."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stored results, oldest window first."""
    found = state(ctx).backend.monitors.history(name, limit)
    if as_json:
        emit_json({"monitor": name, "results": found})
        return
    table(
        f"History of {name}",
        ["window", "rows", "status", "drift share", "failed"],
        [
            (
                r["window_start"],
                r["rows"],
                r["status"],
                f"{r.get('drift', {}).get('drift_share', 0):.0%}" if r.get("drift") else "-",
                ", ".join(c["name"] for c in r.get("checks", []) if c["status"] == "failed"),
            )
            for r in found
        ],
    )
