"""Start the platform server with uvicorn, after the safety checks."""

from __future__ import annotations

import os

from fastapi import FastAPI

from shipyard.bootstrap import local_backend
from shipyard.core.errors import InvalidInputError
from shipyard.core.settings import Settings
from shipyard.server.app import create_app
from shipyard.server.auth import check_bind


def build_app(settings: Settings) -> FastAPI:
    """A ready app on the local backend of ``settings`` (schema migrated)."""
    if settings.backend_kind == "http":
        raise InvalidInputError(
            "the server needs a database store (sqlite:///... or postgresql+psycopg://...); "
            f"SHIPYARD_URI points at another server: {settings.store_uri}"
        )
    return create_app(local_backend(settings), settings)


def app_factory() -> FastAPI:
    """Uvicorn factory for multi-worker mode: each worker reads the same environment."""
    return build_app(Settings())


def run_server(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted; refuses a non-loopback bind without auth."""
    import uvicorn

    check_bind(host, settings.auth)
    app = build_app(settings)  # migrates once, before any worker starts
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    # Workers are separate processes: hand them the resolved settings via the environment.
    os.environ["SHIPYARD_URI"] = settings.store_uri
    os.environ["SHIPYARD_ARTIFACTS"] = settings.artifact_root
    os.environ["SHIPYARD_AUTH"] = settings.auth
    os.environ["SHIPYARD_SCHEDULER_INTERVAL"] = str(settings.scheduler_interval)
    uvicorn.run(
        "shipyard.server.run:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )
