"""Monitors on the pipeline scheduler: ``shipyard schedule add watch-fraud
shipyard.sdk.monitor_pipeline:watch --cron "5 * * * *" -p spec=monitor.yaml`` evaluates the
last complete window every hour (alerts, notifications and retraining included)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shipyard.sdk import context, runs
from shipyard.sdk.monitoring import resolve_monitor, retrainer
from shipyard.sdk.pipelines import pipeline, step


@step(cache=False)  # type: ignore[untyped-decorator]  # step() returns Any
def evaluate_monitor(spec: str, at: str = "") -> dict[str, Any]:
    """Evaluate the last complete window (or the one holding ``at``) of a monitor."""
    from shipyard.monitoring.service import window_of

    backend = context.current().get_backend()
    monitor = resolve_monitor(backend, spec)
    service = backend.monitors
    service.retrain = retrainer()
    moment = datetime.fromisoformat(at) if at else datetime.now(UTC)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if monitor.window.rows is not None:
        result = service.run_latest(monitor, moment)
    else:
        start, end = window_of(monitor, moment)
        if not at:  # the window in progress is not complete yet
            start, end = start - (end - start), start
        result = service.run(monitor, start, end)
    runs.log_metrics(
        {"rows": float(result["rows"]), "alert": 1.0 if result["status"] == "alert" else 0.0}
    )
    return {
        "monitor": monitor.name,
        "status": result["status"],
        "window_start": result["window_start"],
        "alerts": result.get("alerts", []),
    }


@pipeline
def watch(spec: str, at: str = "") -> Any:
    """A monitor run as a pipeline, so the scheduler can run it on a cron."""
    return evaluate_monitor(spec, at)
