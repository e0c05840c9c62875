"""The platform server: the REST API under /api/v1, OpenAPI docs and /health."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request

from shipyard import __version__
from shipyard.bootstrap import Backend
from shipyard.core.settings import Settings
from shipyard.remote.schemas import Health
from shipyard.server import errors, tracking
from shipyard.server.auth import LOCAL_ACTOR, current_actor
from shipyard.server.limits import BodyLimitMiddleware


def create_app(backend: Backend, settings: Settings) -> FastAPI:
    """Build the app around an already-built local backend."""
    app = FastAPI(
        title="Shipyard",
        version=__version__,
        description="Self-hosted MLOps platform: tracking API.",
        dependencies=[Depends(current_actor)],
    )
    app.state.backend = backend
    app.state.settings = settings
    app.state.actor = LOCAL_ACTOR
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_request_bytes,
        upload_limit=settings.max_artifact_bytes,
    )
    errors.install(app)
    app.include_router(tracking.router)

    @app.get("/health", tags=["health"])
    def health(request: Request) -> Health:
        """Liveness and the store this server writes to."""
        store = request.app.state.backend.uri.split("@")[-1]
        return Health(status="ok", version=__version__, store=store)

    return app
