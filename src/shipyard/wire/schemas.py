"""The REST API's wire format, shared by the server and the client so they cannot disagree.

Non-finite metric values travel as the strings "NaN", "Infinity" and "-Infinity", since
JSON has no literal for them.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from shipyard.monitoring.alerts import Alert
from shipyard.pipelines.models import PipelineRunRecord, PipelineStatus, StepRunRecord, StepStatus
from shipyard.pipelines.schedules import Schedule, Tick, TickStatus
from shipyard.registry.models import ModelVersion, RegisteredModel, VersionState
from shipyard.tracking.models import (
    ArtifactRecord,
    Experiment,
    Metric,
    Run,
    RunPage,
    RunSource,
    RunStatus,
)

#: Who a trusted front end (the UI behind its session) says the request acts for.
ACTOR_HEADER = "X-Shipyard-Actor"


def plain(value: Any) -> Any:
    """JSON-ready form of a record (dataclasses, enums to their values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Enum):
        return value.value
    return value


class Wire(BaseModel):
    """Base of every API schema: strict about unknown fields, non-finite floats as strings."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings", frozen=True)


class ErrorBody(Wire):
    """Every 4xx/5xx answer: a one-line message, the error type and its context."""

    error: str
    type: str
    context: dict[str, object] = Field(default_factory=dict)


class ExperimentCreate(Wire):
    """Body of ``POST /api/v1/experiments``."""

    name: str
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentRead(Wire):
    """An experiment."""

    id: str
    name: str
    created_at: int
    tags: dict[str, str]

    @classmethod
    def of(cls, exp: Experiment) -> ExperimentRead:
        """From the domain record."""
        return cls(id=exp.id, name=exp.name, created_at=exp.created_at, tags=exp.tags)

    def domain(self) -> Experiment:
        """To the domain record."""
        return Experiment(self.id, self.name, self.created_at, dict(self.tags))


class ExperimentList(Wire):
    """Experiments, oldest first."""

    experiments: list[ExperimentRead]


class SourceWire(Wire):
    """Where a run's code came from."""

    git_commit: str | None = Field(default=None, max_length=64)
    entry_point: str | None = Field(default=None, max_length=1024)


class RunCreate(Wire):
    """Body of ``POST /api/v1/runs``."""

    experiment_id: str
    name: str
    parent_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    source: SourceWire = Field(default_factory=SourceWire)


class RunUpdate(Wire):
    """Body of ``PATCH /api/v1/runs/{run_id}``."""

    status: RunStatus


class RunRead(Wire):
    """A run with its params, latest metric values and tags."""

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_id: str | None
    source: SourceWire
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]

    @classmethod
    def of(cls, run: Run) -> RunRead:
        """From the domain record."""
        return cls(
            id=run.id,
            experiment_id=run.experiment_id,
            name=run.name,
            status=run.status,
            start_time=run.start_time,
            end_time=run.end_time,
            parent_id=run.parent_id,
            source=SourceWire(git_commit=run.source.git_commit, entry_point=run.source.entry_point),
            params=run.params,
            metrics=run.metrics,
            tags=run.tags,
        )

    def domain(self) -> Run:
        """To the domain record."""
        return Run(
            self.id,
            self.experiment_id,
            self.name,
            self.status,
            self.start_time,
            self.end_time,
            self.parent_id,
            RunSource(self.source.git_commit, self.source.entry_point),
            dict(self.params),
            dict(self.metrics),
            dict(self.tags),
        )


class MetricWire(Wire):
    """One metric point."""

    key: str
    value: float
    step: int = 0
    timestamp: int

    def domain(self) -> Metric:
        """To the domain record."""
        return Metric(self.key, self.value, self.step, self.timestamp)


class BatchCreate(Wire):
    """Body of ``POST /api/v1/runs/{run_id}/batch``; ``batch_id`` makes retries safe."""

    batch_id: str | None = None
    metrics: list[MetricWire] = Field(default_factory=list)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class MetricHistory(Wire):
    """Every point of one metric."""

    metrics: list[MetricWire]


class RunSearch(Wire):
    """Body of ``POST /api/v1/runs/search`` (MLflow's filter and order syntax)."""

    experiment_ids: list[str] | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    max_results: int = 100
    page_token: str | None = None


class RunPageRead(Wire):
    """One page of runs."""

    runs: list[RunRead]
    next_page_token: str | None

    @classmethod
    def of(cls, page: RunPage) -> RunPageRead:
        """From the domain record."""
        return cls(runs=[RunRead.of(r) for r in page.runs], next_page_token=page.next_page_token)


class ArtifactRead(Wire):
    """A named artifact of a run."""

    run_id: str
    name: str
    digest: str
    size: int
    media_type: str
    created_at: int

    @classmethod
    def of(cls, rec: ArtifactRecord) -> ArtifactRead:
        """From the domain record."""
        return cls(
            run_id=rec.run_id,
            name=rec.name,
            digest=rec.digest,
            size=rec.size,
            media_type=rec.media_type,
            created_at=rec.created_at,
        )

    def domain(self) -> ArtifactRecord:
        """To the domain record."""
        return ArtifactRecord(
            self.run_id, self.name, self.digest, self.size, self.media_type, self.created_at
        )


class ArtifactList(Wire):
    """A run's artifacts."""

    artifacts: list[ArtifactRead]


class Health(Wire):
    """Body of ``GET /health``."""

    status: str
    version: str
    store: str


# registry ---------------------------------------------------------------------------------


class ModelRead(Wire):
    """A registered model with its tags, aliases and latest version number."""

    name: str
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    use_case: str | None = None
    owner: str | None = None
    risk_tier: str | None = None
    intended_use: str | None = None
    approvals_required: int = 1

    @classmethod
    def of(cls, model: RegisteredModel) -> ModelRead:
        """From the domain record."""
        return cls(
            name=model.name,
            description=model.description,
            created_at=model.created_at,
            updated_at=model.updated_at,
            tags=model.tags,
            aliases=model.aliases,
            latest_version=model.latest_version,
            use_case=model.use_case,
            owner=model.owner,
            risk_tier=model.risk_tier,
            intended_use=model.intended_use,
            approvals_required=model.approvals_required,
        )

    def domain(self) -> RegisteredModel:
        """To the domain record."""
        return RegisteredModel(
            self.name,
            self.description,
            self.created_at,
            self.updated_at,
            dict(self.tags),
            dict(self.aliases),
            self.latest_version,
            use_case=self.use_case,
            owner=self.owner,
            risk_tier=self.risk_tier,
            intended_use=self.intended_use,
            approvals_required=self.approvals_required,
        )


class ModelList(Wire):
    """Registered models by name."""

    models: list[ModelRead]


class ModelCreate(Wire):
    """Body of ``POST /api/v1/models``."""

    name: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class ModelUpdate(Wire):
    """Body of ``PATCH /api/v1/models/{name}``."""

    description: str


class VersionCreate(Wire):
    """Body of ``POST /api/v1/models/{name}/versions``: register a logged package."""

    run_id: str
    artifact_path: str = "model"
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    created_by: str | None = Field(default=None, max_length=256)
    data_profile: dict[str, Any] | None = None


class VersionRead(Wire):
    """A model version: its package's files and hashes, signature, state, card."""

    id: str
    name: str
    version: int
    run_id: str
    artifact_path: str
    state: VersionState
    description: str
    flavors: list[str]
    signature: dict[str, Any]
    files: dict[str, str]
    environment: dict[str, str]
    card: dict[str, Any]
    created_by: str
    created_at: int
    updated_at: int
    deleted: bool
    tags: dict[str, str]
    aliases: list[str]

    @classmethod
    def of(cls, mv: ModelVersion) -> VersionRead:
        """From the domain record."""
        return cls(
            id=mv.id,
            name=mv.name,
            version=mv.version,
            run_id=mv.run_id,
            artifact_path=mv.artifact_path,
            state=mv.state,
            description=mv.description,
            flavors=mv.flavors,
            signature=mv.signature,
            files=mv.files,
            environment=mv.environment,
            card=mv.card,
            created_by=mv.created_by,
            created_at=mv.created_at,
            updated_at=mv.updated_at,
            deleted=mv.deleted,
            tags=mv.tags,
            aliases=mv.aliases,
        )

    def domain(self) -> ModelVersion:
        """To the domain record."""
        return ModelVersion(
            id=self.id,
            name=self.name,
            version=self.version,
            run_id=self.run_id,
            artifact_path=self.artifact_path,
            state=self.state,
            description=self.description,
            flavors=list(self.flavors),
            signature=dict(self.signature),
            files=dict(self.files),
            environment=dict(self.environment),
            card=dict(self.card),
            created_by=self.created_by,
            created_at=self.created_at,
            updated_at=self.updated_at,
            deleted=self.deleted,
            tags=dict(self.tags),
            aliases=list(self.aliases),
        )


class VersionList(Wire):
    """Versions of one model, newest first."""

    versions: list[VersionRead]


class VersionUpdate(Wire):
    """Body of ``PATCH /api/v1/models/{name}/versions/{version}``: one change at a time."""

    description: str | None = None
    state: VersionState | None = None
    reason: str | None = Field(default=None, max_length=2000)  # break-glass to production


class CardEdit(Wire):
    """Body of ``PATCH .../versions/{version}/card``: the people-written card fields."""

    changes: dict[str, Any]


class TagValue(Wire):
    """Body of ``PUT .../tags/{key}``."""

    value: str


class AliasTarget(Wire):
    """Body of ``PUT /api/v1/models/{name}/aliases/{alias}``."""

    version: int
    #: Why, when the move is break-glass (``champion`` by hand).
    reason: str | None = Field(default=None, max_length=2000)


# gates --------------------------------------------------------------------------------------


class GateReportWire(Wire):
    """A gate report as JSON (``GateReport.to_dict``); checks carry their own tables."""

    model_config = ConfigDict(extra="allow", frozen=True, ser_json_inf_nan="strings")

    id: str
    model: str
    version: int
    passed: bool
    checks: list[dict[str, Any]]


class RunExpiry(Wire):
    """Body of ``POST /api/v1/runs/expire``: end runs silent since this time (ms)."""

    silent_since: int = Field(ge=0)


class ArtifactRef(Wire):
    """An artifact of a run, named for the server to read."""

    run_id: str = Field(max_length=64)
    artifact: str = Field(max_length=1000)


class GateCheckCreate(Wire):
    """Body of ``POST .../gate-checks``: the policy and where the data lies."""

    policy: dict[str, Any]
    data: ArtifactRef
    reference: ArtifactRef | None = None


class GateReportList(Wire):
    """Reports, newest first."""

    reports: list[dict[str, Any]]


# governance ---------------------------------------------------------------------------------


class AuditEventCreate(Wire):
    """Body of ``POST /api/v1/audit/events``: an event that happened at the client."""

    action: str = Field(pattern=r"^[a-z][a-z0-9_.]{0,99}$")
    object: str = Field(min_length=1, max_length=500)
    payload: dict[str, Any] = Field(default_factory=dict)


class UserCreate(Wire):
    """Body of ``POST /api/v1/users``."""

    name: str
    role: str


class UserUpdate(Wire):
    """Body of ``PUT /api/v1/users/{name}``: a new role, or disabled."""

    role: str
    disabled: bool = False


class TokenCreate(Wire):
    """Body of ``POST /api/v1/tokens``."""

    user: str
    name: str = "default"
    expires_in: str | None = None


class NoteBody(Wire):
    """A decision's note."""

    note: str = ""


class PromotionCreate(Wire):
    """Body of ``POST .../versions/{version}/promotion-requests``."""

    to: str = "production"
    note: str = ""


class GovernanceUpdate(Wire):
    """Body of ``PUT /api/v1/models/{name}/governance``."""

    use_case: str | None = None
    owner: str | None = None
    risk_tier: str | None = None
    intended_use: str | None = None
    approvals_required: int | None = None


# --- pipelines, schedules and blobs (team mode: pipelines run in the client, the server
# keeps their records and outputs) --------------------------------------------------------

_ID = r"^[a-z]{1,8}_[0-9a-hjkmnp-tv-z]{26}$"
_DIGEST = r"^[0-9a-f]{64}$"
_NODE = r"^[a-z_]{1,20}:[^\x00-\x1f]{1,100}$"  # "step_run:<id>", "artifact:<sha256>", ...
_STAMP = Field(ge=0, le=2**63 - 1)


D = TypeVar("D")


class DomainWire(Wire, Generic[D]):
    """A wire model with the fields of a domain dataclass (``domain_type``), so one
    ``of``/``domain`` pair serves pipeline runs, step runs, schedules and ticks."""

    domain_type: ClassVar[type[Any]]

    @classmethod
    def of(cls, record: D) -> Self:
        """The wire form of a domain record."""
        return cls.model_validate(dataclasses.asdict(record))  # type: ignore[call-overload]

    def domain(self) -> D:
        """The domain record this carries (nested records included)."""
        from pydantic import TypeAdapter

        found: D = TypeAdapter(self.domain_type).validate_python(self.model_dump())
        return found


class OutputWire(Wire):
    """A stored output of a step."""

    name: str = Field(min_length=1, max_length=250)
    digest: str = Field(pattern=_DIGEST)
    size: int = _STAMP
    materializer: str = Field(min_length=1, max_length=250)
    type_name: str = Field(max_length=500)
    meta: dict[str, Any] = Field(default_factory=dict)


class StepRunWire(DomainWire[StepRunRecord]):
    """A step run, with its outputs and the input nodes it read."""

    domain_type: ClassVar[type[Any]] = StepRunRecord

    id: str = Field(pattern=_ID)
    pipeline_run_id: str = Field(pattern=_ID)
    step: str = Field(min_length=1, max_length=250)
    status: StepStatus
    cache_key: str | None = Field(default=None, pattern=_DIGEST)
    run_id: str | None = Field(default=None, pattern=_ID)
    started_at: int | None = _STAMP
    ended_at: int | None = _STAMP
    attempts: int = Field(default=0, ge=0, le=1000)
    error: str | None = Field(default=None, max_length=20_000)
    code_hash: str | None = Field(default=None, pattern=_DIGEST)
    outputs: list[OutputWire] = Field(default_factory=list, max_length=1000)
    inputs: list[str] = Field(default_factory=list, max_length=1000)


class PipelineRunWire(DomainWire[PipelineRunRecord]):
    """A pipeline run, with its step runs when read one by one."""

    domain_type: ClassVar[type[Any]] = PipelineRunRecord

    id: str = Field(pattern=_ID)
    pipeline: str = Field(min_length=1, max_length=250)
    status: PipelineStatus
    params: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = Field(default=None, pattern=_ID)
    started_at: int = _STAMP
    ended_at: int | None = _STAMP
    executor: str = Field(min_length=1, max_length=32)
    steps: list[StepRunWire] = Field(default_factory=list)


class PipelineRunList(Wire):
    """``GET /api/v1/pipeline-runs``: newest first."""

    runs: list[PipelineRunWire]


class PipelineFinish(Wire):
    """Body of ``POST /api/v1/pipeline-runs/{id}/finish``."""

    status: PipelineStatus
    ended_at: int = _STAMP


Edge = tuple[
    Annotated[str, Field(pattern=_NODE)],
    Annotated[str, Field(pattern=_NODE)],
    Annotated[str, Field(min_length=1, max_length=64)],
]


class StepSave(Wire):
    """Body of ``PUT /api/v1/pipeline-runs/{id}/steps/{step_run_id}``."""

    record: StepRunWire
    position: int = Field(ge=0, le=100_000)
    edges: list[Edge] | None = Field(default=None, max_length=5000)
    cache: bool = False
    end_tracked_run: RunStatus | None = None


class EdgeList(Wire):
    """Lineage edges (source node, target node, relation)."""

    edges: list[Edge] = Field(max_length=5000)


class NodeList(Wire):
    """Body of ``POST /api/v1/lineage/edges/touching``."""

    nodes: list[str] = Field(max_length=5000)


class RunIdList(Wire):
    """Body of ``POST /api/v1/pipeline-runs/step-counts``."""

    run_ids: list[str] = Field(max_length=1000)


class StepCounts(Wire):
    """Steps per status of each pipeline run."""

    counts: dict[str, dict[str, int]]


class PipelineSummary(Wire):
    """One pipeline: its name, how many runs, when the last started."""

    name: str
    runs: int
    last_started: int


class PipelineList(Wire):
    """``GET /api/v1/pipelines``."""

    pipelines: list[PipelineSummary]


class CacheEntry(Wire):
    """The outputs a cache key holds (``PUT``/``GET /api/v1/step-cache/{key}``)."""

    step: str = Field(min_length=1, max_length=250)
    step_run_id: str = Field(pattern=_ID)
    outputs: list[OutputWire] = Field(max_length=1000)


class ScheduleWire(DomainWire[Schedule]):
    """A schedule: a pipeline target on cron with fixed params."""

    domain_type: ClassVar[type[Any]] = Schedule

    name: str = Field(min_length=1, max_length=250)
    target: str = Field(min_length=1, max_length=1000)
    cron: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    created_at: int = _STAMP
    last_tick_at: int | None = _STAMP
    executor: Literal["local", "processes", "ray"] = "local"


class ScheduleList(Wire):
    """``GET /api/v1/schedules``."""

    schedules: list[ScheduleWire]


class TickWire(DomainWire[Tick]):
    """One due moment of a schedule and its outcome."""

    domain_type: ClassVar[type[Any]] = Tick

    schedule: str = Field(min_length=1, max_length=250)
    nominal_time: int = _STAMP
    status: TickStatus
    pipeline_run_id: str | None = Field(default=None, pattern=_ID)
    recorded_at: int = _STAMP
    note: str | None = Field(default=None, max_length=2000)


class TickList(Wire):
    """``GET /api/v1/schedules/{name}/ticks``: newest first."""

    ticks: list[TickWire]


class TickClaim(Wire):
    """Body of ``POST /api/v1/schedules/{name}/ticks/claim``."""

    nominal_time: int = _STAMP
    stale_before: int = _STAMP


class TickClaimed(Wire):
    """The claim's outcome: STARTED, SKIPPED, or null when another scheduler has it."""

    status: TickStatus | None


class TickFinish(Wire):
    """Body of ``POST /api/v1/schedules/{name}/ticks/{nominal_time}/finish``."""

    status: TickStatus
    pipeline_run_id: str | None = Field(default=None, pattern=_ID)
    note: str | None = Field(default=None, max_length=2000)


class BlobRead(Wire):
    """A stored blob: its digest and size."""

    digest: str
    size: int


# --- monitors and alerts (evaluated on the server, where the prediction log is) ----------


class MonitorRunCreate(Wire):
    """Body of ``POST /api/v1/monitors/{name}/runs``: the monitor and one window, or
    ``until`` for a ``window: {rows: N}`` monitor (the last N predictions before it)."""

    spec: dict[str, Any]
    start: datetime | None = None
    end: datetime | None = None
    until: datetime | None = None


class MonitorResults(Wire):
    """Stored window results, oldest first."""

    monitor: str | None = None
    results: list[dict[str, Any]]


class AlertWire(DomainWire[Alert]):
    """An alert and how its notifications went."""

    domain_type: ClassVar[type[Any]] = Alert

    id: str
    monitor: str
    rule: str
    severity: str
    status: str
    opened_at: int
    first_window: str
    last_window: str
    message: str
    resolved_at: int | None = None
    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    pipeline_run: str | None = None


class AlertList(Wire):
    """Alerts, newest first."""

    alerts: list[AlertWire]


class AlertRedeliver(Wire):
    """Body of ``POST /api/v1/alerts/{id}/redeliver``: the monitor whose notifiers send."""

    spec: dict[str, Any]


class RetrainingLink(Wire):
    """Body of ``POST /api/v1/alerts/{id}/retraining``: the run a client started."""

    pipeline: str = Field(min_length=1, max_length=500)
    pipeline_run: str = Field(pattern=_ID)


# --- the project spec (plan and apply run on the server, in one transaction) ------------


class SpecDocumentWire(Wire):
    """One checked document: its kind, name and body."""

    kind: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    body: dict[str, Any]


class SpecRequest(Wire):
    """Body of ``POST /api/v1/spec/plan`` and ``/apply``."""

    documents: list[SpecDocumentWire] = Field(max_length=100_000)
    prune: bool = False


class SpecDocuments(Wire):
    """Documents, as ``export`` gives them."""

    documents: list[SpecDocumentWire]


class SpecEdit(Wire):
    """Body of ``PATCH /api/v1/spec/objects/{kind}/{name}``: field path -> new value."""

    changes: dict[str, Any] = Field(min_length=1, max_length=100)


class DriftWatch(Wire):
    """Body of ``POST /api/v1/spec/drift/watch``: the declared notifiers to tell."""

    notify: list[str] = Field(default_factory=list, max_length=20)
