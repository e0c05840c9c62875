"""The model server: Open Inference Protocol v2, MLflow's ``/invocations`` and ``/metrics``.

The request path is kept short on purpose (it is what the serving benchmark measures):
read the body, parse and validate it against the signature, run the model (ONNX Runtime
where a verified conversion exists), answer, then hand the record to the prediction log's
queue and the shadow queue without waiting on either.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard import __version__
from shipyard.core.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.registry.signature import SchemaError
from shipyard.server.admission import Admission, ShedError
from shipyard.server.limits import BodyLimitMiddleware
from shipyard.serving.deployment import Deployment, Poller, Served, row_outputs
from shipyard.serving.payloads import (
    ParsedRequest,
    PayloadTooLargeError,
    UnsupportedMediaError,
    oip_tensor,
    parse_invocations,
    parse_oip,
)
from shipyard.serving.ports import PredictionRecord, PredictionSink

logger = logging.getLogger(__name__)

_JSON = "application/json"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class ServingMetrics:
    """Prometheus metrics of one server process (aggregated across workers when
    ``PROMETHEUS_MULTIPROC_DIR`` is set, as prometheus-client does it)."""

    def __init__(self, deployment: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.deployment = deployment
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "shipyard_inference_requests_total",
            "Inference requests answered, by model version and HTTP status code.",
            ["deployment", "model", "version", "code"],
            registry=reg,
        )
        self.duration = Histogram(
            "shipyard_inference_request_duration_seconds",
            "Time from request body read to response, by model version.",
            ["deployment", "model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "shipyard_inference_errors_total",
            "Requests refused or failed, by reason.",
            ["deployment", "reason"],
            registry=reg,
        )
        self.rows = Counter(
            "shipyard_inference_rows_total",
            "Rows predicted, by model version.",
            ["deployment", "model", "version"],
            registry=reg,
        )
        self.info = Gauge(
            "shipyard_model_info",
            "1 for each model version this server loaded (role: primary, canary, shadow).",
            ["deployment", "model", "version", "role", "engine"],
            registry=reg,
            multiprocess_mode="max",
        )
        self.predlog_rows = Counter(
            "shipyard_predlog_rows_total",
            "Prediction-log rows, by outcome (written, or dropped with its reason).",
            ["deployment", "outcome"],
            registry=reg,
        )
        self.swaps = Counter(
            "shipyard_model_swaps_total",
            "Times a followed alias moved and the server swapped models.",
            ["deployment"],
            registry=reg,
        )
        self.shadow_dropped = Counter(
            "shipyard_shadow_requests_dropped_total",
            "Shadow copies dropped because the shadow queue was full.",
            ["deployment"],
            registry=reg,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def observe(self, served: Served, code: int, seconds: float, rows: int) -> None:
        """Count one answered request."""
        key = (served.model_name, served.version_label, code)
        children = self._children.get(key)
        if children is None:
            labels = (self.deployment, served.model_name, served.version_label)
            children = (
                self.requests.labels(*labels, str(code)),
                self.duration.labels(*labels),
                self.rows.labels(*labels),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if rows:
            children[2].inc(rows)

    def error(self, reason: str) -> None:
        """Count a refused or failed request."""
        self.errors.labels(self.deployment, reason).inc()

    def set_loaded(self, deployment: Deployment) -> None:
        """Publish which versions are loaded."""
        self.info.clear()
        for s in deployment.serving():
            engine = "onnxruntime" if s.model.uses_onnx else s.model.flavor
            self.info.labels(self.deployment, s.model_name, s.version_label, s.role, engine).set(1)

    def predlog_event(self, event: str, rows: int) -> None:
        """Callback of the prediction log."""
        outcome = event.replace(":", "_")
        self.predlog_rows.labels(self.deployment, outcome).inc(rows)

    def render(self) -> bytes:
        """The exposition text."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.multiprocess:
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(merged))
        return bytes(generate_latest(self.registry))


class ShadowRunner:
    """Runs shadow versions on copies of requests in one background thread (bounded)."""

    def __init__(
        self,
        deployment: Deployment,
        emit: Callable[[Served, ParsedRequest, str, float, dict[str, Any]], None],
        on_drop: Callable[[], None],
        max_queue: int = 1000,
        threshold: float | None = None,
    ) -> None:
        self.deployment = deployment
        self.threshold = threshold
        self.emit = emit
        self.on_drop = on_drop
        self._queue: queue.Queue[tuple[ParsedRequest, str] | None] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name="shipyard-shadow", daemon=True)
        self._thread.start()

    def submit(self, parsed: ParsedRequest, request_id: str) -> None:
        """Queue a copy; drop (and count) when the shadow path falls behind."""
        try:
            self._queue.put_nowait((parsed, request_id))
        except queue.Full:
            self.on_drop()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            parsed, request_id = item
            for shadow in list(self.deployment.shadows):
                started = time.perf_counter()
                try:
                    outputs = shadow.model.infer(parsed.columns)
                    if self.threshold is not None:
                        # Shadows decide at the served cut, so their log compares like for like.
                        outputs["predict"] = _decide(outputs, self.threshold)
                except Exception:
                    logger.exception("shadow %s failed", shadow.uri)
                    continue
                self.emit(shadow, parsed, request_id, time.perf_counter() - started, outputs)

    def close(self) -> None:
        """Stop after the queued copies."""
        self._queue.put(None)
        self._thread.join(10)


#: Body size past which uvicorn pauses reading a connection (its flow-control high water).
_UVICORN_HIGH_WATER = 65_536


def _error(
    status: int, message: str, *, mlflow: bool = False, code: str | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {"error": message}
    if mlflow:
        body["error_code"] = code or ("BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
        body["message"] = message
    body.update(extra)
    return Response(json.dumps(body), status_code=status, media_type=_JSON)


def create_model_app(
    deployment: Deployment,
    sink: PredictionSink | None,
    *,
    max_request_bytes: int = 16 * 1024 * 1024,
) -> FastAPI:
    """Build the model server around a loaded deployment and an optional prediction log."""
    metrics = ServingMetrics(deployment.spec.name)
    metrics.set_loaded(deployment)

    def swapped(old: Served, new: Served) -> None:
        metrics.swaps.labels(deployment.spec.name).inc()
        metrics.set_loaded(deployment)

    deployment.on_swap = swapped
    name = deployment.spec.name
    max_rows = deployment.spec.max_rows
    threshold = deployment.spec.threshold
    if threshold is not None:
        for served in deployment.serving():
            _check_threshold(served)

    def log(
        served: Served,
        parsed: ParsedRequest | None,
        request_id: str,
        seconds: float,
        outputs: dict[str, Any],
        event_ms: int | None = None,
        status: int = 200,
    ) -> None:
        """Log a prediction, or a failed request (``parsed`` None: no rows, its code)."""
        if sink is None:
            return
        sink.submit(
            PredictionRecord(
                deployment=name,
                model=served.model_name,
                version=served.version_label,
                role=served.role,
                request_id=request_id,
                timestamp_ms=event_ms if event_ms is not None else time.time_ns() // 1_000_000,
                latency_seconds=seconds,
                inputs=parsed.columns if parsed is not None else {},
                outputs=row_outputs(outputs) if outputs else {},
                rows=parsed.rows if parsed is not None else 0,
                status=status,
            )
        )

    shadow: ShadowRunner | None = None
    if deployment.shadows:
        shadow = ShadowRunner(
            deployment,
            log,
            lambda: metrics.shadow_dropped.labels(name).inc(),
            threshold=threshold,
        )

    poller = Poller(deployment, deployment.spec.poll_interval)
    admission = Admission(
        max_queue=deployment.spec.max_queue, timeout=deployment.spec.queue_timeout
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        poller.start()
        # Everything loaded so far (libraries, the models) lives as long as the server:
        # move it out of the collector's sight so full collections stay short and do not
        # show up as tail latency (the same reason Instagram's servers call gc.freeze).
        gc.collect()
        gc.freeze()
        yield
        poller.stop()
        if shadow is not None:
            shadow.close()
        if sink is not None:
            sink.close()

    app = FastAPI(
        title=f"Shipyard model server: {name}",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        BodyLimitMiddleware, json_limit=max_request_bytes, upload_limit=max_request_bytes
    )
    app.state.deployment = deployment
    app.state.metrics = metrics

    def predict(
        served: Served,
        parsed: ParsedRequest,
        request_id: str,
        started: float,
        event_ms: int | None = None,
    ) -> tuple[dict[str, Any], float]:
        outputs = served.model.infer(parsed.columns)
        if threshold is not None:
            outputs["predict"] = _decide(outputs, threshold)
        seconds = time.perf_counter() - started
        log(served, parsed, request_id, seconds, outputs, event_ms)
        if shadow is not None:
            shadow.submit(parsed, request_id)
        return outputs, seconds

    def headers(served: Served, request_id: str) -> dict[str, str]:
        return {
            "x-request-id": request_id,
            "x-model-version": f"{served.model_name}/{served.version_label}",
        }

    async def score(
        request: Request,
        parse: Callable[[bytes, Served], ParsedRequest],
        render: Callable[[Served, ParsedRequest, dict[str, Any], str], bytes],
        mlflow: bool,
        version: str | None = None,
    ) -> Response:
        started = time.perf_counter()
        body = await request.body()
        if len(body) > _UVICORN_HIGH_WATER:
            # Uvicorn stops reading a connection once a large body is buffered; this resumes
            # it, so a client that gives up while waiting is seen as gone (and not scored).
            await request.is_disconnected()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        if version is None:
            served = deployment.choose(request_id)
        else:
            found = deployment.find_version(version)
            if found is None:
                metrics.error("unknown_version")
                return _error(404, f"version {version} is not served here", mlflow=mlflow)
            served = found
        default_id = request_id

        def work(event_ms: int | None) -> tuple[ParsedRequest, bytes, float, str]:
            parsed = parse(body, served)
            rid = parsed.request_id or default_id
            outputs, seconds = predict(served, parsed, rid, started, event_ms)
            return parsed, render(served, parsed, outputs, rid), seconds, rid

        event_ms: int | None = None

        def failed(code: int, reason: str) -> None:
            seconds = time.perf_counter() - started
            metrics.error(reason)
            metrics.observe(served, code, seconds, 0)
            log(served, None, default_id, seconds, {}, event_ms, status=code)  # error rate

        try:
            event_ms = _event_time(request) if deployment.spec.replay else None
            parsed, content, seconds, request_id = await admission.run(
                lambda: work(event_ms), request.is_disconnected, started
            )
        except ShedError as exc:
            failed(503, exc.reason)
            response = _error(503, exc.message, mlflow=mlflow)
            response.headers["Retry-After"] = "1"
            return response
        except UnsupportedMediaError as exc:
            failed(415, "unsupported_media_type")
            return _error(415, exc.message, mlflow=mlflow)
        except PayloadTooLargeError as exc:
            failed(413, "too_many_rows")
            return _error(413, exc.message, mlflow=mlflow)
        except InvalidInputError as exc:
            failed(400, "invalid_input")
            code = "INVALID_PARAMETER_VALUE" if isinstance(exc, SchemaError) else None
            return _error(400, exc.message, mlflow=mlflow, code=code)
        except Exception as exc:
            logger.exception("model %s failed", served.uri)
            failed(500, "model_error")
            return _error(500, f"the model failed: {type(exc).__name__}: {exc}", mlflow=mlflow)
        metrics.observe(served, 200, seconds, parsed.rows)
        return Response(content, media_type=_JSON, headers=headers(served, request_id))

    def parse_mlflow(request: Request) -> Callable[[bytes, Served], ParsedRequest]:
        content_type = request.headers.get("content-type", "application/json")
        return lambda body, served: parse_invocations(
            body, content_type, served.model.signature, max_rows
        )

    def render_mlflow(
        served: Served, parsed: ParsedRequest, outputs: dict[str, Any], rid: str
    ) -> bytes:
        return json.dumps({"predictions": outputs["predict"].tolist()}).encode()

    def render_oip(
        served: Served, parsed: ParsedRequest, outputs: dict[str, Any], rid: str
    ) -> bytes:
        wanted = parsed.outputs or list(outputs)
        unknown = [w for w in wanted if w not in outputs]
        if unknown:
            raise InvalidInputError(
                f"unknown output(s) {unknown}; this model has {sorted(outputs)}"
            )
        return json.dumps(
            {
                "model_name": served.model_name,
                "model_version": served.version_label,
                "id": rid,
                "outputs": [oip_tensor(w, outputs[w]) for w in wanted],
            }
        ).encode()

    def parse_v2(request: Request) -> Callable[[bytes, Served], ParsedRequest]:
        # The binary tensor extension (tritonclient, KServe's set_data_from_numpy): a JSON
        # header of this many bytes, then the tensors' raw bytes.
        header = request.headers.get("inference-header-content-length")
        if header is not None and not (header.isascii() and header.isdigit()):
            raise InvalidInputError("Inference-Header-Content-Length must be a byte count")
        length = int(header) if header is not None else None
        return lambda body, served: parse_oip(
            body, served.model.signature, max_rows, header_length=length
        )

    def check_name(model_name: str) -> None:
        if model_name not in (deployment.model_name, name):
            raise NotFoundError(f"model {model_name!r} is not served here")

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        """MLflow scoring protocol."""
        return await score(request, parse_mlflow(request), render_mlflow, mlflow=True)

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: Request) -> Response:
        """Open Inference Protocol v2 inference."""
        if model_name not in (deployment.model_name, name):
            return _error(404, f"model {model_name!r} is not served here")
        return await score(request, parse_v2(request), render_oip, mlflow=False)

    @app.post("/v2/models/{model_name}/versions/{version}/infer")
    async def infer_version(model_name: str, version: str, request: Request) -> Response:
        """Inference on one named version (primary, canary or shadow)."""
        if model_name not in (deployment.model_name, name):
            return _error(404, f"model {model_name!r} is not served here")
        return await score(request, parse_v2(request), render_oip, mlflow=False, version=version)

    def metadata(served: Served) -> dict[str, Any]:
        sig = served.model.signature
        # The label's type is the signature's (int, string or float labels), not always FP64.
        label = sig.outputs[0].oip_datatype if sig.outputs else "FP64"
        outputs = [{"name": "predict", "datatype": label, "shape": [-1]}]
        if hasattr(served.model, "predict_proba"):
            # What infer returns: onnxruntime gives float32 probabilities, native models float64.
            proba = "FP32" if served.model.uses_onnx else "FP64"
            outputs.append({"name": "predict_proba", "datatype": proba, "shape": [-1, -1]})
        return {
            "name": served.model_name,
            "versions": [s.version_label for s in deployment.serving()],
            "platform": "onnxruntime" if served.model.uses_onnx else served.model.flavor,
            "inputs": [
                {"name": c.name, "datatype": c.oip_datatype, "shape": [-1]} for c in sig.inputs
            ],
            "outputs": outputs,
            "parameters": {"deployment": name, "role": served.role, "uri": served.uri},
        }

    @app.get("/v2/models/{model_name}")
    def model_metadata(model_name: str) -> Response:
        """OIP model metadata: inputs and outputs from the signature."""
        try:
            check_name(model_name)
        except NotFoundError as exc:
            return _error(404, exc.message)
        return Response(json.dumps(metadata(deployment.primary)), media_type=_JSON)

    @app.get("/v2/models/{model_name}/versions/{version}")
    def version_metadata(model_name: str, version: str) -> Response:
        """OIP metadata of one served version."""
        found = deployment.find_version(version)
        if found is None or model_name not in (deployment.model_name, name):
            return _error(404, f"{model_name} version {version} is not served here")
        return Response(json.dumps(metadata(found)), media_type=_JSON)

    @app.get("/v2/models/{model_name}/ready")
    def model_ready(model_name: str) -> Response:
        """OIP model readiness."""
        if model_name not in (deployment.model_name, name):
            return _error(404, f"model {model_name!r} is not served here")
        return Response(json.dumps({"name": model_name, "ready": True}), media_type=_JSON)

    @app.get("/v2/models/{model_name}/versions/{version}/ready")
    def version_ready(model_name: str, version: str) -> Response:
        """OIP readiness of one served version."""
        found = deployment.find_version(version)
        if found is None or model_name not in (deployment.model_name, name):
            return _error(404, f"{model_name} version {version} is not served here")
        body = {"name": model_name, "version": version, "ready": True}
        return Response(json.dumps(body), media_type=_JSON)

    @app.get("/v2/health/live")
    def live() -> Response:
        """Liveness probe."""
        return Response(json.dumps({"live": True}), media_type=_JSON)

    @app.get("/v2/health/ready")
    def ready() -> Response:
        """Readiness probe: models are loaded before the server accepts connections."""
        return Response(json.dumps({"ready": True}), media_type=_JSON)

    @app.get("/v2")
    def server_metadata() -> Response:
        """OIP server metadata."""
        return Response(
            json.dumps({"name": "shipyard", "version": __version__, "extensions": []}),
            media_type=_JSON,
        )

    @app.get("/ping")
    @app.get("/health")
    def ping() -> Response:
        """MLflow's health check."""
        return Response("\n", media_type="application/json")

    @app.get("/version")
    def version_route() -> Response:
        """MLflow's version endpoint."""
        return Response(__version__, media_type="text/plain")

    @app.get("/metrics")
    def metrics_route() -> Response:
        """Prometheus exposition."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(ShipyardError)
    async def shipyard_error(_: Request, exc: ShipyardError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 400
        return _error(status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown routes and methods answer in the protocol's shape, not Starlette's.
        what = "no such route" if exc.status_code == 404 else str(exc.detail)
        message = f"{what}: {request.method} {request.url.path}"
        return _error(exc.status_code, message, mlflow=request.url.path == "/invocations")

    return app


def _event_time(request: Request) -> int | None:
    """The replayed request's time from ``x-shipyard-event-time`` (epoch ms or ISO 8601)."""
    from datetime import datetime

    value = request.headers.get("x-shipyard-event-time")
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        raise InvalidInputError(
            f"x-shipyard-event-time must be epoch milliseconds or ISO 8601; got {value!r}"
        ) from None


def _check_threshold(served: Served) -> None:
    """A threshold needs a binary classifier whose labels are 0 and 1."""
    classes = getattr(served.model.native, "classes_", None)
    if (
        not hasattr(served.model, "predict_proba")
        or classes is None
        or ([int(c) if str(c).lstrip("-").isdigit() else c for c in classes] != [0, 1])
    ):
        raise InvalidInputError(
            f"--threshold needs a binary classifier with labels 0 and 1; {served.uri} is not one"
        )


def _decide(outputs: dict[str, Any], threshold: float) -> Any:
    """Labels from the positive-class score at the deployment's threshold."""
    import numpy as np

    proba = outputs.get("predict_proba")
    if proba is None or proba.ndim != 2 or proba.shape[1] != 2:
        return outputs["predict"]
    return (proba[:, 1] >= threshold).astype(np.int64)
