"""``shipyard serve models:/NAME@ALIAS``"""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console
from shipyard.cli.state import state
from shipyard.core.errors import InvalidInputError


def serve(
    ctx: typer.Context,
    model: str = typer.Argument(
        None,
        help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model, or the name of "
        "a Deployment the project spec declares.",
    ),
    config: Path = typer.Option(
        None, "--config", "-f", help="A 'kind: Deployment' YAML file instead of flags."
    ),
    name: str = typer.Option(None, "--name", help="Deployment name (default: the model name)."),
    canary: str = typer.Option(None, "--canary", help="Model URI that takes a share of traffic."),
    canary_percent: int = typer.Option(
        10, "--canary-percent", min=0, max=100, help="Share of requests for the canary."
    ),
    shadow: list[str] = typer.Option(
        None, "--shadow", help="Model URI that gets a copy of traffic (repeatable)."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Bind address (loopback unless --auth tokens)."
    ),
    auth: str = typer.Option(
        None, "--auth", help="Auth mode: none or tokens (overrides SHIPYARD_AUTH)."
    ),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    poll_interval: float = typer.Option(
        10.0, "--poll-interval", help="Seconds between alias checks (0: never)."
    ),
    max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="Rows per request, at most."),
    max_queue: int = typer.Option(
        64, "--max-queue", min=1, help="Requests that may wait for the model; more get 503."
    ),
    queue_timeout: float = typer.Option(
        1.0, "--queue-timeout", help="Seconds a request may wait before it is shed (503)."
    ),
    no_predlog: bool = typer.Option(False, "--no-predlog", help="Do not log predictions."),
    replay: bool = typer.Option(
        False, "--replay", help="Log requests at their x-shipyard-event-time (backfills)."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Decide at this positive-class score (binary 0/1 models)."
    ),
) -> None:
    """Serve a registered model: OIP v2, MLflow /invocations and Prometheus /metrics."""
    from shipyard.registry.models import parse_model_uri
    from shipyard.server.serve_models import run_model_server
    from shipyard.serving.deployment import DeploymentSpec

    if config is not None:
        spec = DeploymentSpec.from_yaml(config)
    elif model is not None and ":/" not in model:  # a declared Deployment
        declared = state(ctx).backend.spec.live().get(("Deployment", model))
        if declared is None:
            raise InvalidInputError(
                f"{model!r} is neither a model URI nor a declared Deployment (shipyard apply)"
            )
        spec = DeploymentSpec(
            name=model,
            model=declared["model"],
            canary=declared.get("canary"),
            canary_percent=int(declared.get("canary_percent") or 0),
            shadows=tuple(declared.get("shadows") or ()),
            poll_interval=poll_interval,
            max_rows=max_rows,
            replay=replay,
            threshold=declared.get("threshold") if threshold is None else threshold,
            max_queue=max_queue,
            queue_timeout=queue_timeout,
        )
        if workers == 1:
            workers = int(declared.get("workers") or 1)
    else:
        if model is None:
            raise InvalidInputError("give a model URI (models:/NAME@ALIAS) or --config FILE")
        parsed = parse_model_uri(model)
        spec = DeploymentSpec(
            name=name or parsed.name or parsed.run_id,
            model=model,
            canary=canary,
            canary_percent=canary_percent if canary else 0,
            shadows=tuple(shadow or ()),
            poll_interval=poll_interval,
            max_rows=max_rows,
            replay=replay,
            threshold=threshold,
            max_queue=max_queue,
            queue_timeout=queue_timeout,
        )
    settings = state(ctx).settings
    if auth is not None:
        if auth not in ("none", "tokens"):
            raise InvalidInputError(f"--auth must be none or tokens; got {auth!r}")
        settings = settings.model_copy(update={"auth": auth})
    console.print(
        f"Serving {spec.model} as '{spec.name}' on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}; predictions → "
        f"{'off' if no_predlog else settings.predlog_root})"
    )
    run_model_server(spec, settings, host=host, port=port, workers=workers, predlog=not no_predlog)
