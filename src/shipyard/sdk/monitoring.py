"""The monitoring API of the SDK: ``log_feedback``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.models import FeedbackResult
from shipyard.sdk import context

if TYPE_CHECKING:
    from shipyard.monitoring.alerts import Alert
    from shipyard.monitoring.ports import Retrainer
    from shipyard.monitoring.spec import MonitorSpec


def feedback_items(labels: Any) -> list[dict[str, Any]]:
    """Label records from a DataFrame (request_id, label[, row]), a {request_id: label}
    mapping, or a list of {"request_id", "label", "row"?} dicts."""
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        missing = {"request_id", "label"} - set(labels.columns)
        if missing:
            raise InvalidInputError(
                f"feedback needs columns request_id and label; missing {sorted(missing)}"
            )
        columns = [c for c in ("request_id", "label", "row") if c in labels.columns]
        records = labels[columns].to_dict(orient="records")
        return [
            {str(k): (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records
        ]
    if isinstance(labels, Mapping):
        return [{"request_id": str(k), "label": v} for k, v in labels.items()]
    if isinstance(labels, list):
        return labels
    raise InvalidInputError("labels must be a DataFrame, a mapping or a list of records")


def log_feedback(deployment: str, labels: Any) -> FeedbackResult:
    """Send ground-truth labels for a deployment's logged predictions, keyed by the request
    id each response carried in ``x-request-id``. Unknown ids and repeats come back in
    ``rejected``; when nothing is new the call raises."""
    backend = context.current().get_backend()
    return backend.feedback.submit(deployment, feedback_items(labels))


def retrainer() -> Retrainer:
    """A hook that runs ``module:pipeline`` for a firing alert; returns its run id."""

    def retrain(target: str, alert: Alert) -> str:
        from shipyard.pipelines.graph import PipelineDefinition
        from shipyard.pipelines.loader import import_target
        from shipyard.sdk.pipelines import runner

        definition = import_target(target)
        if not isinstance(definition, PipelineDefinition):
            raise InvalidInputError(f"retrain target {target!r} is not a @pipeline")
        record = runner().run(definition, {})
        return str(record.id)  # the monitor records it, with the alert's lineage

    return retrain


def resolve_monitor(backend: Any, spec: str | Path) -> MonitorSpec:
    """A monitor from a YAML file, or the monitor of that name a project spec declared."""
    from shipyard.monitoring.spec import load_monitor

    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_monitor(path)
    from shipyard.spec.documents import compose_monitor

    monitor: MonitorSpec = compose_monitor(str(spec), backend.spec.live())
    return monitor
