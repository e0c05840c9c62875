"""Shipyard: self-hosted MLOps in one package.

The SDK is MLflow-like::

    import shipyard

    with shipyard.start_run(experiment="fraud"):
        shipyard.log_param("model", "lgbm")
        shipyard.log_metric("auc", 0.93)

Importing ``shipyard`` is cheap: SQLAlchemy, FastAPI and scikit-learn load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "set_uri": "shipyard.sdk.runs",
    "get_uri": "shipyard.sdk.runs",
    "start_run": "shipyard.sdk.runs",
    "active_run": "shipyard.sdk.runs",
    "end_run": "shipyard.sdk.runs",
    "log_metric": "shipyard.sdk.runs",
    "log_metrics": "shipyard.sdk.runs",
    "log_param": "shipyard.sdk.runs",
    "log_params": "shipyard.sdk.runs",
    "set_tag": "shipyard.sdk.runs",
    "set_tags": "shipyard.sdk.runs",
    "log_artifact": "shipyard.sdk.runs",
    "log_artifacts": "shipyard.sdk.runs",
    "delete_run": "shipyard.sdk.runs",
    "search_experiments": "shipyard.sdk.runs",
    "create_experiment": "shipyard.sdk.runs",
    "get_experiment_by_name": "shipyard.sdk.runs",
    "set_experiment": "shipyard.sdk.runs",
    "get_tracking_uri": "shipyard.sdk.runs",
    "set_tracking_uri": "shipyard.sdk.runs",
    "last_active_run": "shipyard.sdk.runs",
    "log_text": "shipyard.sdk.runs",
    "log_dict": "shipyard.sdk.runs",
    "log_figure": "shipyard.sdk.runs",
    "flush": "shipyard.sdk.runs",
    "get_run": "shipyard.sdk.runs",
    "get_metric_history": "shipyard.sdk.runs",
    "search_runs": "shipyard.sdk.runs",
    "get_experiment": "shipyard.sdk.runs",
    "list_experiments": "shipyard.sdk.runs",
    "download_artifact": "shipyard.sdk.runs",
    "autolog": "shipyard.sdk.autolog",
    "step": "shipyard.sdk.pipelines",
    "pipeline": "shipyard.sdk.pipelines",
    "register_materializer": "shipyard.sdk.pipelines",
    "PipelineRun": "shipyard.sdk.pipelines",
    "log_model": "shipyard.sdk.registry",
    "register_model": "shipyard.sdk.registry",
    "load_model": "shipyard.sdk.registry",
    "set_alias": "shipyard.sdk.registry",
    "delete_alias": "shipyard.sdk.registry",
    "get_model_version": "shipyard.sdk.registry",
    "list_models": "shipyard.sdk.registry",
    "model_registry": "shipyard.sdk.registry",
    "ModelVersion": "shipyard.registry.models",
    "check_gates": "shipyard.sdk.gates",
    "log_feedback": "shipyard.sdk.monitoring",
    "drift_report": "shipyard.sdk.gates",
    "GatePolicy": "shipyard.gates.policy",
    "GateReport": "shipyard.gates.report",
    "ActiveRun": "shipyard.sdk.active_run",
    "Run": "shipyard.tracking.models",
    "RunStatus": "shipyard.tracking.models",
    "Metric": "shipyard.tracking.models",
    "ShipyardError": "shipyard.core.errors",
}

__all__ = [
    "ActiveRun",
    "GatePolicy",
    "GateReport",
    "Metric",
    "ModelVersion",
    "PipelineRun",
    "Run",
    "RunStatus",
    "ShipyardError",
    "__version__",
    "active_run",
    "autolog",
    "check_gates",
    "create_experiment",
    "delete_alias",
    "delete_run",
    "download_artifact",
    "drift_report",
    "end_run",
    "flush",
    "get_experiment",
    "get_experiment_by_name",
    "get_metric_history",
    "get_model_version",
    "get_run",
    "get_tracking_uri",
    "get_uri",
    "last_active_run",
    "list_experiments",
    "list_models",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_feedback",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "model_registry",
    "pipeline",
    "register_materializer",
    "register_model",
    "search_experiments",
    "search_runs",
    "set_alias",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "set_uri",
    "start_run",
    "step",
]

if TYPE_CHECKING:
    from shipyard.core.errors import ShipyardError
    from shipyard.gates.policy import GatePolicy
    from shipyard.gates.report import GateReport
    from shipyard.registry.models import ModelVersion
    from shipyard.sdk.active_run import ActiveRun
    from shipyard.sdk.autolog import autolog
    from shipyard.sdk.gates import check_gates, drift_report
    from shipyard.sdk.monitoring import log_feedback
    from shipyard.sdk.pipelines import PipelineRun, pipeline, register_materializer, step
    from shipyard.sdk.registry import (
        delete_alias,
        get_model_version,
        list_models,
        load_model,
        log_model,
        model_registry,
        register_model,
        set_alias,
    )
    from shipyard.sdk.runs import (
        active_run,
        create_experiment,
        delete_run,
        download_artifact,
        end_run,
        flush,
        get_experiment,
        get_experiment_by_name,
        get_metric_history,
        get_run,
        get_tracking_uri,
        get_uri,
        last_active_run,
        list_experiments,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_experiments,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        set_uri,
        start_run,
    )
    from shipyard.tracking.models import Metric, Run, RunStatus


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
