"""``shipyard server``"""

from __future__ import annotations

import typer

from shipyard.cli.output import console
from shipyard.cli.state import state


def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Bind address (loopback unless auth is on)."
    ),
    port: int = typer.Option(5000, "--port", min=0, max=65535, help="Port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    auth: str = typer.Option(
        None, "--auth", help="Auth mode: none or tokens (overrides SHIPYARD_AUTH)."
    ),
    scheduler: bool = typer.Option(
        False, "--scheduler", help="Also run due schedules in this process (see --interval)."
    ),
    interval: float = typer.Option(
        30.0, "--scheduler-interval", min=0.1, max=86_400, help="Seconds between passes."
    ),
) -> None:
    """Run the platform server: the web UI at /, REST API under /api/v1, docs at /docs."""
    from shipyard.server.run import run_server

    settings = state(ctx).settings
    if auth is not None:
        settings = settings.model_copy(update={"auth": auth})
    if scheduler:
        settings = settings.model_copy(update={"scheduler_interval": interval})
    console.print(f"Shipyard server on http://{host}:{port} (store: {settings.store_uri})")
    run_server(settings, host=host, port=port, workers=workers)


def ui(
    ctx: typer.Context,
    port: int = typer.Option(5000, "--port", min=0, max=65535, help="Port."),
) -> None:
    """Open the web UI over this store on 127.0.0.1 (local mode: no login). Prints the URL;
    opens no browser."""
    from shipyard.server.run import run_server

    settings = state(ctx).settings.model_copy(update={"auth": "none"})
    console.print(f"Shipyard UI on http://127.0.0.1:{port}/ (store: {settings.store_uri})")
    run_server(settings, host="127.0.0.1", port=port, workers=1)
