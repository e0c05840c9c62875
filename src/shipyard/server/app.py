"""The platform server: the REST API under /api/v1, OpenAPI docs and /health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute

from shipyard import __version__
from shipyard.bootstrap import Backend
from shipyard.core.settings import Settings
from shipyard.server import (
    edge,
    errors,
    gates,
    governance,
    metrics,
    mlflow_api,
    monitoring,
    pipelines,
    registry,
    spec,
    tracking,
)
from shipyard.server.auth import LoginThrottle, authorize
from shipyard.server.limits import BodyLimitMiddleware
from shipyard.server.scheduling import SchedulerThread
from shipyard.server.sweeper import RunSweeper
from shipyard.ui import pages
from shipyard.wire.schemas import Health


def create_app(backend: Backend, settings: Settings) -> FastAPI:
    """Build the app around an already-built local backend."""
    sweeper = RunSweeper(backend.tracking, settings.run_timeout)
    schedules = SchedulerThread(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper.start()
        schedules.start()
        yield
        schedules.stop()
        sweeper.stop()
        # Devices' telemetry queued for the prediction log is written before the process ends.
        backend.release("edge")

    app = FastAPI(
        lifespan=lifespan,
        title="Shipyard",
        version=__version__,
        description="Self-hosted MLOps platform: the REST API under /api/v1 and the web UI at /.",
        dependencies=[Depends(authorize)],
    )
    app.state.backend = backend
    app.state.settings = settings
    app.state.login_throttle = LoginThrottle()
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_request_bytes,
        upload_limit=settings.max_artifact_bytes,
    )
    errors.install(app)
    # Routes are matched in order, one at a time: the busiest ingestion paths (Shipyard's
    # own tracking and MLflow's client, whose log-batch is its hot loop) come first. Their
    # prefixes (/api/v1/..., /api/2.0/mlflow..., /ajax-api/...) overlap no other router's.
    app.include_router(tracking.router)
    app.include_router(mlflow_api.router)
    app.include_router(registry.router)
    app.include_router(gates.router)
    app.include_router(governance.router)
    app.include_router(pipelines.router)
    app.include_router(monitoring.router)
    app.include_router(spec.router)
    app.include_router(edge.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.mount("/static", pages.Assets(directory=pages.STATIC), name="static")

    @app.get("/health", tags=["health"])
    def health(request: Request) -> Health:
        """Liveness and the store this server writes to."""
        store = request.app.state.backend.uri.split("@")[-1]
        return Health(status="ok", version=__version__, store=store)

    return app


def mounted_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route the app serves, including those of included routers."""
    found: list[APIRoute] = []
    pending: list[Any] = list(app.routes)
    while pending:
        route = pending.pop(0)
        if isinstance(route, APIRoute):
            found.append(route)
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.165 wraps routers
        if inner is not None:
            pending.extend(inner.routes)
    return found
