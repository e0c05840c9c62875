"""Run the model server: one process, or N workers sharing a port with SO_REUSEPORT.

Uvicorn's own multi-worker mode shares one listening socket and was measured to add tens
of milliseconds per request on kept-open connections on this kind of machine (uvicorn
issue #3149). Here each worker binds its own socket with ``SO_REUSEPORT`` and the kernel
spreads connections, so a worker answers its connections directly.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI

from shipyard.bootstrap import Backend, build_backend
from shipyard.core.errors import PermissionDeniedError, ShipyardError
from shipyard.core.settings import Settings
from shipyard.registry.models import ModelVersion
from shipyard.server.auth import is_loopback
from shipyard.serving.deployment import Deployment, DeploymentSpec, Served

logger = logging.getLogger(__name__)


def build_model_app(
    spec: DeploymentSpec, settings: Settings, *, predlog: bool = True
) -> tuple[FastAPI, Backend]:
    """Load the deployment's models and build the app (with its prediction log)."""
    from shipyard.server.model_server import create_model_app

    backend = build_backend(settings)
    deployment = Deployment(spec, lambda uri: backend.registry.load(uri))
    sink = None
    if predlog:
        from shipyard.predlog.writer import ParquetPredictionLog

        holder: dict[str, Any] = {}
        sink = ParquetPredictionLog(
            settings.predlog_root,
            max_queue=settings.predlog_queue,
            on_event=lambda event, rows: holder["metrics"].predlog_event(event, rows)
            if "metrics" in holder
            else None,
        )
    app = create_model_app(deployment, sink, max_request_bytes=settings.max_request_bytes)
    if settings.auth == "tokens":
        from shipyard.server.serving_auth import TokenAuthMiddleware

        app.add_middleware(
            TokenAuthMiddleware, authenticate=backend.governance.identity.authenticate
        )
    if predlog:
        holder["metrics"] = app.state.metrics
    count_swap = deployment.on_swap

    def swapped(old: Served, new: Served) -> None:
        if count_swap is not None:
            count_swap(old, new)
        _record(
            backend,
            "deployment.swapped",
            spec.name,
            {new.uri: new.version},
            {
                "role": new.role,
                "from": old.version_label,
                "to": new.version_label,
                "pid": os.getpid(),
            },
        )

    deployment.on_swap = swapped
    return app, backend


def _record(
    backend: Backend,
    action: str,
    name: str,
    versions: dict[str, ModelVersion | None],
    payload: dict[str, Any],
) -> None:
    """Audit a deployment change and link the served versions to it in lineage."""
    try:
        backend.governance.audit.record(action, f"deployment:{name}", payload)
        if backend.pipelines is not None:
            backend.pipelines.store.add_edges(
                [
                    (f"model:{mv.name}/{mv.version}", f"deployment:{name}", "served_by")
                    for mv in versions.values()
                    if mv is not None
                ]
            )
    except ShipyardError as exc:  # serving goes on; the record is best effort here
        logger.error("could not record %s for deployment %s: %s", action, name, exc)


def check_spec(spec: DeploymentSpec, settings: Settings) -> None:
    """Resolve every URI once, so a typo fails before any worker starts."""
    backend = build_backend(settings)
    try:
        resolved: dict[str, ModelVersion | None] = {}
        for uri in (spec.model, spec.canary, *spec.shadows):
            if uri is not None:
                resolved[uri] = (
                    backend.registry.resolve(uri) if uri.startswith("models:/") else None
                )
        _record(
            backend,
            "deployment.started",
            spec.name,
            resolved,
            {
                "model": spec.model,
                "canary": spec.canary,
                "canary_percent": spec.canary_percent,
                "shadows": list(spec.shadows),
                "versions": {u: v.version for u, v in resolved.items() if v is not None},
            },
        )
    finally:
        backend.close()


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(
    spec: dict[str, Any],
    settings: dict[str, Any],
    host: str,
    port: int,
    predlog: bool,
    log_level: str,
) -> None:
    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    app, backend = build_model_app(DeploymentSpec(**spec), Settings(**settings), predlog=predlog)
    sock = _socket(host, port)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        backend.close()


def run_model_server(
    spec: DeploymentSpec,
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    predlog: bool = True,
    log_level: str = "warning",
) -> None:
    """Serve until interrupted; refuses a non-loopback bind without auth."""
    import uvicorn

    if not is_loopback(host) and settings.auth != "tokens":
        raise PermissionDeniedError(
            f"refusing to bind {host!r} without authentication: a non-loopback model server "
            "must run with --auth tokens (SHIPYARD_AUTH=tokens); bind 127.0.0.1 for local use",
            host=host,
        )
    if settings.auth == "tokens" and settings.backend_kind == "http":
        raise PermissionDeniedError(
            "token auth on the model server checks tokens against the store's users: point "
            "SHIPYARD_URI at the database (sqlite:///... or postgresql+psycopg://...)"
        )
    check_spec(spec, settings)
    if workers == 1:
        app, backend = build_model_app(spec, settings, predlog=predlog)
        try:
            uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        finally:
            backend.close()
        return
    metrics_dir = tempfile.mkdtemp(prefix="shipyard-prom-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    resolved = settings.model_copy(
        update={"uri": settings.store_uri, "artifacts": settings.artifact_root}
    )
    # Settings hold a SecretStr; hand the worker plain values it can rebuild from.
    plain = resolved.model_dump(exclude_none=True)
    if resolved.token is not None:
        plain["token"] = resolved.token.get_secret_value()
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker,
            args=(asdict(spec), plain, host, port, predlog, log_level),
            name=f"shipyard-serve-{i}",
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def stop(*_: Any) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        stop()
        for proc in procs:
            proc.join(30)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
