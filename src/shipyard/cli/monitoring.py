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
from shipyard.sdk.monitoring import feedback_items, resolve_monitor, retrainer

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
    spec: str = typer.Argument(..., help="Monitor YAML (kind: Monitor), or a declared monitor."),
    at: str | None = typer.Option(
        None, "--at", help="Evaluate the window holding this time (default: the last full one)."
    ),
    windows: int = typer.Option(1, "--windows", min=1, max=10_000, help="This many windows back."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Evaluate windows and store their results (re-running a window replaces its result);
    exit 1 when a window raises an alert."""
    from shipyard.monitoring.service import window_of

    backend = state(ctx).backend
    monitor = resolve_monitor(backend, spec)
    service = backend.monitors
    service.retrain = retrainer()
    start, end = window_of(monitor, _moment(at))
    if at is None:  # the window in progress is not complete: take the one before
        start, end = start - (end - start), start
    step = end - start
    results = []
    with console.status(f"evaluating {windows} window(s) of {monitor.name}"):
        if monitor.window.rows is not None:  # the last N predictions
            results.append(service.run_latest(monitor, _moment(at)))
        else:
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
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the newest N windows."),
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


alerts_app = typer.Typer(help="Alerts raised by monitors.", no_args_is_help=True)


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    monitor: str | None = typer.Option(None, "--monitor", help="Only this monitor's alerts."),
    status: str | None = typer.Option(None, "--status", help="firing or resolved."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Alerts, newest first, with how their notifications went."""
    found = state(ctx).backend.monitors.list_alerts(monitor, status)
    if as_json:
        emit_json({"alerts": found})
        return
    table(
        "Alerts",
        ["id", "monitor", "rule", "severity", "status", "window", "delivered"],
        [
            (
                a.id,
                a.monitor,
                a.rule,
                a.severity,
                a.status,
                a.last_window,
                ", ".join(
                    f"{d['notifier']}:{'yes' if d.get('delivered') else 'NO'}" for d in a.deliveries
                ),
            )
            for a in found
        ],
    )


@alerts_app.command("retry")
def retry(
    ctx: typer.Context,
    alert_id: str = typer.Argument(..., help="Alert id (alrt_...)."),
    spec: str = typer.Option(
        ..., "--monitor-spec", help="The monitor YAML, or a declared monitor (its notifiers)."
    ),
) -> None:
    """Send an alert's undelivered notifications again."""
    backend = state(ctx).backend
    alert = backend.monitors.redeliver(alert_id, resolve_monitor(backend, spec))
    left = [d["notifier"] for d in alert.deliveries if not d.get("delivered")]
    console.print(
        f"alert {alert.id}: "
        + (f"still undelivered to {', '.join(left)}" if left else "every notification delivered")
    )


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Monitor name."),
    html: Path = typer.Option(..., "--html", help="Write the page here."),
) -> None:
    """One self-contained page: drift tables with histograms, quality and performance over time."""
    from shipyard.monitoring.report import render_report

    history = state(ctx).backend.monitors.history(name)
    html.write_text(render_report(name, history), encoding="utf-8")
    console.print(f"report of {name} ({len(history)} windows) written to {html}")
