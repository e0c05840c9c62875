"""MLflow's REST API served by ``shipyard server``: existing MLflow code works unchanged.

``mlflow.set_tracking_uri("http://shipyard:5000")`` (or ``MLFLOW_TRACKING_URI``) points the
real MLflow client here: experiments, runs, metrics, params, tags, ``log-batch``, search,
artifacts through ``mlflow-artifacts``, logged models and the model registry. Each route is
a translation to the same services Shipyard's own API uses, so the same rules, audit and
token auth (``MLFLOW_TRACKING_TOKEN``) apply; errors come back in MLflow's shape.
"""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.server.mlflow_api import artifacts, registry, tracking

router = APIRouter()
router.include_router(tracking.router)
router.include_router(artifacts.router)
router.include_router(registry.router)
