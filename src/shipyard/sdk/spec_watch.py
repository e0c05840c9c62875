"""Configuration drift on the pipeline scheduler: ``shipyard schedule add drift-watch
shipyard.sdk.spec_watch:watch_drift --cron "*/15 * * * *" -p notify=ops`` (or a Pipeline
document) checks every 15 minutes that the store is what the last apply made, and raises the
``spec-drift/config-drift`` alert, notifying ``ops``, while it is not."""

from __future__ import annotations

from typing import Any

from shipyard.sdk import context, runs
from shipyard.sdk.pipelines import pipeline, step


@step(cache=False)  # type: ignore[untyped-decorator]  # step() returns Any
def check_drift(notify: str = "") -> dict[str, Any]:
    """Judge drift as a window of the spec-drift monitor."""
    names = [n.strip() for n in notify.split(",") if n.strip()]
    result: dict[str, Any] = context.current().get_backend().spec.watch_drift(names)
    runs.log_metrics({"drifted_objects": float(result["rows"])})
    return {"status": result["status"], "alerts": result.get("alerts", [])}


@pipeline
def watch_drift(notify: str = "") -> Any:
    """Configuration drift as a pipeline, so the scheduler can run it on a cron."""
    return check_drift(notify)
