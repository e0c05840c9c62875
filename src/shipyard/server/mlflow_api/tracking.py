"""MLflow's tracking routes (``/api/2.0/mlflow/...``) as translations to TrackingService.

The same rules hold as on Shipyard's own API: a run changes only through its owner or an
admin, who trained it is the token's user, params never change value. What Shipyard does
not keep (experiment deletion and renaming, deleted-run restore, tag deletion) is refused
with ``INVALID_PARAMETER_VALUE`` and a message saying so, never silently dropped.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.core import filters
from shipyard.core.clock import now_ms
from shipyard.core.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.core.jsonsafe import parse_json
from shipyard.server.auth import current_actor
from shipyard.server.jsonbody import JsonRoute
from shipyard.server.mlflow_api import wire
from shipyard.server.tracking import _owned, _svc
from shipyard.tracking.models import Experiment, Metric, Run, RunSource, RunStatus
from shipyard.tracking.service import DEFAULT_EXPERIMENT, USER_TAG, TrackingService

router = APIRouter(prefix="/api/2.0/mlflow", tags=["mlflow"], route_class=JsonRoute)
Id = Annotated[str, Query(max_length=256)]


class Body(BaseModel):
    """An MLflow request message: unknown fields are ignored, as protobuf's parser does."""

    model_config = ConfigDict(extra="ignore")


class KeyValue(Body):
    key: str
    value: str | None = None


def _pairs(items: list[KeyValue]) -> dict[str, str]:
    return {i.key: i.value or "" for i in items}


# experiments ------------------------------------------------------------------------------


def experiment_of(svc: TrackingService, experiment_id: str) -> Experiment:
    """The experiment an MLflow id names; ``0`` is MLflow's default experiment."""
    if experiment_id in (wire.DEFAULT_EXPERIMENT_ID, ""):
        return svc.get_or_create_experiment(DEFAULT_EXPERIMENT)
    if not experiment_id.startswith("exp_"):
        raise NotFoundError(f"no experiment with id {experiment_id[:80]!r}")
    return svc.get_experiment(experiment_id)


class CreateExperiment(Body):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


@router.post("/experiments/create")
def create_experiment(body: CreateExperiment, request: Request) -> dict[str, str]:
    """Create an experiment (Shipyard chooses where its artifacts live)."""
    exp = _svc(request).create_experiment(body.name, _pairs(body.tags))
    return {"experiment_id": exp.id}


@router.get("/experiments/get")
def get_experiment(request: Request, experiment_id: Id = "0") -> dict[str, Any]:
    """An experiment by id."""
    return {"experiment": wire.experiment(experiment_of(_svc(request), experiment_id))}


@router.get("/experiments/get-by-name")
def get_experiment_by_name(
    request: Request, experiment_name: Annotated[str, Query(max_length=500)]
) -> dict[str, Any]:
    """An experiment by exact name."""
    found = _svc(request).find_experiment(experiment_name)
    if found is None:
        raise NotFoundError(f"Could not find experiment with name '{experiment_name}'")
    return {"experiment": wire.experiment(found)}


class SearchExperiments(Body):
    max_results: int = Field(default=1000, ge=1, le=50_000)
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None
    view_type: str | int | None = None


@router.post("/experiments/search")
def search_experiments(body: SearchExperiments, request: Request) -> dict[str, Any]:
    """Experiments by name or tag (``name LIKE 'fraud%'``), newest first by default."""
    found = _svc(request).search_experiments(body.filter, body.order_by)
    start = _offset(body.page_token)
    page = found[start : start + body.max_results]
    out: dict[str, Any] = {"experiments": [wire.experiment(e) for e in page]}
    if start + body.max_results < len(found):
        out["next_page_token"] = str(start + body.max_results)
    return out


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit() or len(token) > 12:
        raise InvalidInputError(f"invalid page token {token[:40]!r}")
    return int(token)


def _unsupported(what: str) -> InvalidInputError:
    return InvalidInputError(f"Shipyard does not {what}: it keeps every record for the audit")


@router.post("/experiments/delete")
@router.post("/experiments/restore")
def delete_experiment() -> dict[str, Any]:
    """Shipyard keeps experiments (and what they hold) for the audit trail."""
    raise _unsupported("delete or restore experiments")


@router.post("/experiments/update")
def rename_experiment() -> dict[str, Any]:
    """Experiment names are stable in Shipyard (pipelines and specs refer to them)."""
    raise InvalidInputError("Shipyard does not rename experiments; create one with the new name")


@router.post("/experiments/set-experiment-tag")
@router.post("/experiments/delete-experiment-tag")
def experiment_tag() -> dict[str, Any]:
    """Experiment tags are set when the experiment is created."""
    raise InvalidInputError("Shipyard sets experiment tags only when an experiment is created")


# runs -------------------------------------------------------------------------------------


class CreateRun(Body):
    experiment_id: str = wire.DEFAULT_EXPERIMENT_ID
    user_id: str | None = None
    start_time: int | None = None
    run_name: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


def _provenance(request: Request, tags: dict[str, str], creating: bool) -> dict[str, str]:
    """Tags as stored: who trained a run is the token's user, written once."""
    actor = current_actor(request)
    tags.pop(USER_TAG, None) if creating else None
    if actor.authenticated:
        if not creating and wire.USER in tags:
            raise PermissionDeniedError(
                f"tag {wire.USER} records who started the run and is written only then"
            )
        if creating:
            tags[wire.USER] = actor.name
            tags[USER_TAG] = actor.name
    elif creating and tags.get(wire.USER):
        tags.setdefault(USER_TAG, tags[wire.USER])
    return tags


@router.post("/runs/create")
def create_run(body: CreateRun, request: Request) -> dict[str, Any]:
    """Start a run; the parent and git commit come from MLflow's tags."""
    svc = _svc(request)
    exp = experiment_of(svc, body.experiment_id)
    tags = _provenance(request, _pairs(body.tags), creating=True)
    name = body.run_name or tags.get(wire.RUN_NAME) or None
    parent = tags.get(wire.PARENT_RUN) or None
    source = RunSource(tags.get(wire.GIT_COMMIT) or None, tags.get(wire.SOURCE_NAME) or None)
    created = svc.create_run(exp.id, name=name, parent_id=parent, tags=tags, source=source)
    return {"run": wire.run(created)}


def _run_id(run_id: str | None, run_uuid: str | None) -> str:
    found = run_id or run_uuid
    if not found:
        raise InvalidInputError("Missing value for required parameter 'run_id'")
    return found


@router.get("/runs/get")
def get_run(request: Request, run_id: Id = "", run_uuid: Id = "") -> dict[str, Any]:
    """A run with its latest metrics, params, tags and logged models."""
    record = _svc(request).get_run(_run_id(run_id, run_uuid))
    return {"run": wire.run(record, model_outputs(_svc(request), record))}


class UpdateRun(Body):
    run_id: str | None = None
    run_uuid: str | None = None
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


@router.post("/runs/update")
def update_run(body: UpdateRun, request: Request) -> dict[str, Any]:
    """End a run (its end time is the server's clock)."""
    run_id = _run_id(body.run_id, body.run_uuid)
    svc = _owned(request, run_id)
    record = svc.get_run(run_id)
    if body.run_name and body.run_name != record.name:
        raise InvalidInputError("Shipyard does not rename runs; a run keeps its first name")
    if body.status and body.status != RunStatus.RUNNING.value:
        record = svc.end_run(run_id, body.status)
    return {"run_info": wire.run_info(record)}


class RunRef(Body):
    run_id: str


@router.post("/runs/delete")
def delete_run(body: RunRef, request: Request) -> dict[str, Any]:
    """Delete a run (refused while a registered version is built from it)."""
    _owned(request, body.run_id).delete_run(body.run_id)
    return {}


@router.post("/runs/restore")
def restore_run() -> dict[str, Any]:
    """Deleted runs stay deleted."""
    raise _unsupported("restore deleted runs")


class LogMetric(Body):
    run_id: str | None = None
    run_uuid: str | None = None
    key: str
    value: float
    timestamp: int | None = None
    step: int = 0


@router.post("/runs/log-metric")
def log_metric(body: LogMetric, request: Request) -> dict[str, Any]:
    """Append one metric point."""
    run_id = _run_id(body.run_id, body.run_uuid)
    point = Metric(body.key, body.value, body.step, body.timestamp or now_ms())
    _owned(request, run_id).log_batch(run_id, [point])
    return {}


class RunKeyValue(Body):
    """Body of ``log-parameter`` and ``set-tag``."""

    run_id: str | None = None
    run_uuid: str | None = None
    key: str
    value: str


@router.post("/runs/log-parameter")
def log_param(body: RunKeyValue, request: Request) -> dict[str, Any]:
    """Set a param (once: a different value later is refused, as in MLflow)."""
    run_id = _run_id(body.run_id, body.run_uuid)
    _owned(request, run_id).log_batch(run_id, params={body.key: body.value})
    return {}


@router.post("/runs/set-tag")
def set_tag(body: RunKeyValue, request: Request) -> dict[str, Any]:
    """Set a run tag."""
    run_id = _run_id(body.run_id, body.run_uuid)
    tags = _provenance(request, {body.key: body.value}, creating=False)
    _owned(request, run_id).log_batch(run_id, tags=tags)
    return {}


@router.post("/runs/delete-tag")
def delete_tag() -> dict[str, Any]:
    """Run tags are kept; set a new value instead."""
    raise InvalidInputError("Shipyard does not delete run tags; set the tag to a new value")


class LogBatch(Body):
    run_id: str
    # Points stay plain dicts: a 1,000-point batch through per-point models costs more
    # than the store's write; check_metrics validates every field of every point.
    metrics: list[dict[str, Any]] = Field(default_factory=list, max_length=100_000)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _integer(value: object) -> object:
    """Protobuf's JSON may carry int64 fields as strings."""
    if type(value) is str and value.isascii() and value.lstrip("-").isdigit() and len(value) < 21:
        return int(value)
    return value


def points(raw: list[dict[str, Any]], now: int) -> list[Metric]:
    """MLflow's metric dicts as points (checked later by ``check_metrics``)."""
    out: list[Metric] = []
    append, get = out.append, dict.get
    for item in raw:
        value = get(item, "value")
        if type(value) is str:
            value = _NON_FINITE.get(value, value)
        elif type(value) is int and -(2**63) <= value < 2**63:
            value = float(value)  # larger ones are refused by check_metrics
        step = get(item, "step") or 0
        timestamp = get(item, "timestamp") or now
        append(
            Metric(
                get(item, "key"),  # type: ignore[arg-type]  # check_metrics checks each field
                value,  # type: ignore[arg-type]
                step if type(step) is int else _integer(step),  # type: ignore[arg-type]
                timestamp if type(timestamp) is int else _integer(timestamp),  # type: ignore[arg-type]
            )
        )
    return out


@router.post(
    "/runs/log-batch",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LogBatch.model_json_schema()}},
        }
    },
)
async def log_batch(request: Request) -> Response:
    """Metrics, params and tags of one run in one transaction.

    The hot path of MLflow's client (1,000 points a request): the body is read here and
    parsed, checked and stored in one worker-thread call, rather than through FastAPI's
    body model. Every point is still checked (``points``, then ``check_metrics``), and
    integers beyond 64 bits are refused where they are used, not by a walk of the body.
    """
    body = await request.body()
    await run_in_threadpool(_log_batch, request, body)
    return Response(b"{}", media_type="application/json")  # MLflow's empty reply, as it is


def _log_batch(request: Request, body: bytes) -> None:
    try:
        batch = LogBatch.model_validate(parse_json(body, check_ints=False))
    except ValidationError as exc:
        raise InvalidInputError(f"invalid log-batch request: {_first_error(exc)}") from None
    tags = _provenance(request, _pairs(batch.tags), creating=False)
    svc = _owned(request, batch.run_id)
    svc.log_batch(batch.run_id, points(batch.metrics, now_ms()), _pairs(batch.params), tags)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"[:300]


class LogInputs(Body):
    run_id: str
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    models: list[dict[str, Any]] = Field(default_factory=list)


@router.post("/runs/log-inputs")
def log_inputs(body: LogInputs, request: Request) -> dict[str, Any]:
    """Keep the datasets a run read (name, digest, source, schema, profile) as an artifact."""
    svc = _owned(request, body.run_id, f"{wire.INPUTS_FILE}")
    if body.datasets:
        known = _read_json(svc, body.run_id, wire.INPUTS_FILE) or []
        svc.log_bytes(body.run_id, json.dumps(known + body.datasets).encode(), wire.INPUTS_FILE)
    return {}


@router.post("/runs/outputs")
def log_outputs(body: LogInputs, request: Request) -> dict[str, Any]:
    """Record that a run produced logged models (at a step)."""
    svc = _owned(request, body.run_id)
    for output in body.models:
        model_id = str(output.get("model_id", ""))
        doc = read_model(svc, model_id)
        steps = set(doc.get("output_steps", [])) | {int(output.get("step") or 0)}
        doc["output_runs"] = sorted(set(doc.get("output_runs", [])) | {body.run_id})
        doc["output_steps"] = sorted(steps)
        write_model(svc, doc)
    return {}


def _read_json(svc: TrackingService, run_id: str, name: str) -> Any:
    try:
        return json.loads(svc.read_artifact_bytes(run_id, name))
    except NotFoundError:
        return None


class SearchRuns(Body):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | int | None = None
    max_results: int = Field(default=1000, ge=1, le=50_000)
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


@router.post("/runs/search")
def search_runs(body: SearchRuns, request: Request) -> dict[str, Any]:
    """Runs by MLflow's filter and order syntax (Shipyard's search speaks it natively)."""
    if body.run_view_type in ("DELETED_ONLY", 2):
        return {"runs": []}
    svc = _svc(request)
    ids = [experiment_of(svc, e).id for e in body.experiment_ids]
    page = svc.search_runs(
        ids, body.filter or None, body.order_by, body.max_results, body.page_token
    )
    out: dict[str, Any] = {"runs": [wire.run(r) for r in page.runs]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


@router.get("/metrics/get-history")
def metric_history(
    request: Request,
    metric_key: Annotated[str, Query(max_length=1000)],
    run_id: Id = "",
    run_uuid: Id = "",
    max_results: Annotated[int, Query(ge=1, le=1_000_000)] = 1_000_000,
    page_token: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Every point of one metric, paged by offset."""
    points = _svc(request).get_metric_history(_run_id(run_id, run_uuid), metric_key)
    start = _offset(page_token)
    page = points[start : start + max_results]
    out: dict[str, Any] = {"metrics": [wire.metric(*p) for p in page]}
    if start + max_results < len(points):
        out["next_page_token"] = str(start + max_results)
    return out


# logged models (MLflow 3) -----------------------------------------------------------------


def _model_file(model_id: str) -> str:
    return f"{wire.LOGGED_MODELS_DIR}/{model_id}.json"


def read_model(svc: TrackingService, model_id: str) -> dict[str, Any]:
    """The stored document of a logged model."""
    doc = _read_json(svc, wire.run_of_model(model_id), _model_file(model_id))
    if doc is None or doc.get("deleted"):
        raise NotFoundError(f"Logged model with ID '{model_id}' not found")
    return dict(doc)


def write_model(svc: TrackingService, doc: dict[str, Any]) -> None:
    """Store a logged model's document beside its run's artifacts."""
    doc["last_updated_timestamp_ms"] = now_ms()
    run_id = wire.run_of_model(doc["model_id"])
    svc.log_bytes(run_id, json.dumps(doc).encode(), _model_file(doc["model_id"]))


def _models_of(svc: TrackingService, run: Run) -> list[dict[str, Any]]:
    ids = run.tags.get(wire.LOGGED_MODELS_TAG, "").split()
    docs = [_read_json(svc, run.id, _model_file(m)) for m in ids]
    return [d for d in docs if d and not d.get("deleted")]


def model_outputs(svc: TrackingService, run: Run) -> list[dict[str, Any]]:
    """The run's ``outputs.model_outputs``: the models it logged, with their steps."""
    return [
        {"model_id": d["model_id"], "step": step}
        for d in _models_of(svc, run)
        for step in d.get("output_steps", [])
    ]


class CreateLoggedModel(Body):
    experiment_id: str = wire.DEFAULT_EXPERIMENT_ID
    name: str = "model"
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


@router.post("/logged-models")
def create_logged_model(body: CreateLoggedModel, request: Request) -> dict[str, Any]:
    """Start a logged model inside its source run (a run of its own when it has none).

    Its files go to the run's artifacts under its name, so ``runs:/<run>/<name>`` and
    Shipyard's own registration find them; a second model of the same name in one run
    goes under ``models/<model id>``.
    """
    svc = _svc(request)
    exp = experiment_of(svc, body.experiment_id)
    if body.source_run_id:
        run = _owned(request, body.source_run_id).get_run(body.source_run_id)
    else:
        tags = _provenance(request, {}, creating=True)
        run = svc.create_run(exp.id, name=body.name, tags=tags)
        svc.end_run(run.id)
    model_id = wire.new_model_id(run.id)
    taken = {d.get("artifact_path") for d in _models_of(svc, run)}
    folder = body.name if body.name not in taken else f"models/{model_id}"
    now = now_ms()
    doc: dict[str, Any] = {
        "model_id": model_id,
        "experiment_id": run.experiment_id,
        "name": body.name,
        "creation_timestamp_ms": now,
        "artifact_path": folder,
        "artifact_uri": f"{wire.artifact_uri(run)}/{folder}",
        "status": "LOGGED_MODEL_PENDING",
        "creator_id": current_actor(request).name,
        "model_type": body.model_type,
        "source_run_id": run.id,
        "params": _pairs(body.params),
        "tags": _pairs(body.tags),
        "output_steps": [],
    }
    write_model(svc, doc)
    held = " ".join([*run.tags.get(wire.LOGGED_MODELS_TAG, "").split(), model_id])
    svc.log_batch(run.id, tags={wire.LOGGED_MODELS_TAG: held})
    return {"model": wire.logged_model(doc)}


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, request: Request) -> dict[str, Any]:
    """A logged model by id."""
    return {"model": wire.logged_model(read_model(_svc(request), model_id))}


class FinalizeLoggedModel(Body):
    status: str | int = "LOGGED_MODEL_READY"


_STATUSES = {2: "LOGGED_MODEL_READY", 3: "LOGGED_MODEL_UPLOAD_FAILED", 1: "LOGGED_MODEL_PENDING"}


def _change_model(request: Request, model_id: str, change: dict[str, Any]) -> dict[str, Any]:
    """Apply ``change`` (fields; ``tags``/``params`` merged, a None value removes a key)
    to a logged model of a run the caller may change, and store it."""
    svc = _owned(request, wire.run_of_model(model_id))
    doc = read_model(svc, model_id)
    for field, value in change.items():
        if field in ("tags", "params"):
            merged = {**doc.get(field, {}), **value}
            doc[field] = {k: v for k, v in merged.items() if v is not None}
        else:
            doc[field] = value
    write_model(svc, doc)
    return doc


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(
    model_id: str, body: FinalizeLoggedModel, request: Request
) -> dict[str, Any]:
    """Mark a logged model ready (or failed) once its files are uploaded."""
    status = _STATUSES.get(body.status, "") if isinstance(body.status, int) else body.status
    if status not in _STATUSES.values():
        raise InvalidInputError(f"unknown logged model status {status!r}")
    return {"model": wire.logged_model(_change_model(request, model_id, {"status": status}))}


@router.delete("/logged-models/{model_id}")
def delete_logged_model(model_id: str, request: Request) -> dict[str, Any]:
    """Hide a logged model (its files stay with the run)."""
    _change_model(request, model_id, {"deleted": True})
    return {}


class ModelTags(Body):
    tags: list[KeyValue] = Field(default_factory=list)


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, body: ModelTags, request: Request) -> dict[str, Any]:
    """Set tags of a logged model."""
    _change_model(request, model_id, {"tags": _pairs(body.tags)})
    return {}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(model_id: str, tag_key: str, request: Request) -> dict[str, Any]:
    """Remove a tag of a logged model."""
    _change_model(request, model_id, {"tags": {tag_key: None}})
    return {}


class ModelParams(Body):
    params: list[KeyValue] = Field(default_factory=list)


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, body: ModelParams, request: Request) -> dict[str, Any]:
    """Add params to a logged model."""
    _change_model(request, model_id, {"params": _pairs(body.params)})
    return {}


class SearchLoggedModels(Body):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    max_results: int = Field(default=100, ge=1, le=10_000)
    order_by: list[dict[str, Any]] = Field(default_factory=list)
    page_token: str | None = None


@router.post("/logged-models/search")
def search_logged_models(body: SearchLoggedModels, request: Request) -> dict[str, Any]:
    """Logged models of experiments, filtered by name, source run, id or status."""
    clauses = filters.parse(body.filter, {"name", "source_run_id", "model_id", "status"})
    svc = _svc(request)
    ids = [experiment_of(svc, e).id for e in body.experiment_ids] or None
    holders = svc.search_runs(
        ids, f"tags.`{wire.LOGGED_MODELS_TAG}` LIKE '%'", ["attributes.start_time DESC"], 50_000
    )
    found = [
        d
        for run in holders.runs
        for d in _models_of(svc, run)
        if filters.matches(
            {k: str(d.get(k)) for k in ("name", "source_run_id", "model_id", "status")}, clauses
        )
    ]
    found.sort(key=lambda d: d["creation_timestamp_ms"], reverse=True)
    start = _offset(body.page_token)
    out: dict[str, Any] = {
        "models": [wire.logged_model(d) for d in found[start : start + body.max_results]]
    }
    if start + body.max_results < len(found):
        out["next_page_token"] = str(start + body.max_results)
    return out
