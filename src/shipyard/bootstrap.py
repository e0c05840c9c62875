"""Composition root: Settings -> adapters -> services.

Two families of adapters serve the same services: local (SQLAlchemy store and blob store
in this process) for ``sqlite:``/``postgresql:`` URIs, and remote (httpx to a Shipyard
server) for ``http(s):`` URIs. The SDK, CLI and server only ever see a :class:`Backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.core.actor import set_process_actor
from shipyard.core.blobs import BlobStore
from shipyard.core.errors import InvalidInputError, StoreError
from shipyard.core.names import expand_env
from shipyard.core.settings import Settings
from shipyard.pipelines.ports import LineageSink, PipelineStore, ScheduleStore
from shipyard.tracking.service import TrackingService

if TYPE_CHECKING:  # built on first use: logging a metric loads none of these
    from shipyard.edge.ports import EdgeOperations
    from shipyard.edge.service import EdgeService
    from shipyard.gates.ports import Gates
    from shipyard.gates.service import GateService
    from shipyard.governance.integrity import ConsistencyCheck
    from shipyard.governance.ports import Approvals, AuditTrail, Identity
    from shipyard.monitoring.alerts import Notifier
    from shipyard.monitoring.feedback import FeedbackService
    from shipyard.monitoring.ports import Feedback, Monitoring
    from shipyard.monitoring.service import MonitorService
    from shipyard.monitoring.spec import MonitorSpec
    from shipyard.registry.ports import ModelRegistry
    from shipyard.registry.service import RegistryService
    from shipyard.spec.ports import SpecOperations
    from shipyard.spec.service import SpecService


@dataclass(frozen=True)
class PipelineParts:
    """What pipeline runs need from a local backend: the blob store and the run records."""

    blobs: BlobStore
    store: PipelineStore
    schedules: ScheduleStore
    lineage: LineageSink | None = None
    namespace: str = "shipyard://default"
    datasets: str = "file://"


@dataclass(frozen=True)
class Governance:
    """Audit log, users and tokens, and approvals of one store."""

    audit: AuditTrail
    identity: Identity
    approvals: Approvals


@dataclass
class Backend:
    """The services for one store, and how to release what they hold.

    Services other than tracking are built on first use (``lazy``): a process that only
    logs metrics never imports the registry, gates (pandas) or monitoring.
    """

    kind: Literal["local", "rest"]
    uri: str
    tracking: TrackingService
    blobs: BlobStore | None = None
    pipelines: PipelineParts | None = None
    lazy: dict[str, Callable[[], Any]] = field(default_factory=dict)
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _built: dict[str, Any] = field(default_factory=dict)

    def service(self, name: str) -> Any:
        """The named service, built now if it was not yet; None if this backend has none."""
        if name not in self._built:
            make = self.lazy.get(name)
            self._built[name] = make() if make is not None else None
        return self._built[name]

    @property
    def registry_service(self) -> ModelRegistry | None:
        """The model registry, or None."""
        found: ModelRegistry | None = self.service("registry")
        return found

    @property
    def monitor_service(self) -> Monitoring | None:
        """Monitors, or None where this backend has none."""
        found: Monitoring | None = self.service("monitors")
        return found

    @property
    def registry(self) -> ModelRegistry:
        """The model registry of this store."""
        found = self.registry_service
        if found is None:
            raise StoreError(f"this backend ({self.uri}) has no model registry")
        return found

    @property
    def gates(self) -> Gates:
        """Quality gates over this store's registry."""
        found: Gates | None = self.service("gates")
        if found is None:
            raise StoreError(f"this backend ({self.uri}) has no quality gates")
        return found

    @property
    def governance(self) -> Governance:
        """Audit, identity and approvals of this store."""
        found: Governance | None = self.service("governance")
        if found is None:
            raise StoreError(f"this backend ({self.uri}) has no governance services")
        return found

    @property
    def consistency(self) -> ConsistencyCheck:
        """The store's database, audit chain and blobs checked against each other."""
        found: ConsistencyCheck | None = self.service("consistency")
        if found is None:
            raise StoreError(
                f"the consistency check runs against the database and blob store, not "
                f"through {self.uri}: point SHIPYARD_URI at the database"
            )
        return found

    @property
    def feedback(self) -> Feedback:
        """Ground-truth labels for logged predictions."""
        found: Feedback | None = self.service("feedback")
        if found is None:
            raise StoreError(f"this backend ({self.uri}) takes no feedback")
        return found

    @property
    def monitors(self) -> Monitoring:
        """Monitor runs, their history and alerts (evaluated where the prediction log is)."""
        found = self.monitor_service
        if found is None:
            raise StoreError(f"this backend ({self.uri}) has no monitors")
        return found

    @property
    def edge(self) -> EdgeOperations:
        """Edge bundles, rollouts and devices."""
        found: EdgeOperations | None = self.service("edge")
        if found is None:
            raise StoreError(f"this backend ({self.uri}) has no edge service")
        return found

    @property
    def spec(self) -> SpecOperations:
        """Plan, apply, export and drift of a project spec."""
        found: SpecOperations | None = self.service("spec")
        if found is None:
            raise StoreError(f"this backend ({self.uri}) takes no project spec")
        return found

    def release(self, name: str) -> None:
        """Close what a built service holds open (the edge service's prediction log files),
        keeping the store's connections; a service never built holds nothing."""
        built = self._built.get(name)
        if built is not None and hasattr(built, "close"):
            built.close()

    def close(self) -> None:
        """Release connections and pools."""
        for closer in self._closers:
            closer()
        self._closers.clear()


def _once(make: Callable[[], Any]) -> Callable[[], Any]:
    """A factory that builds once and hands out the same object after."""
    made: list[Any] = []

    def get() -> Any:
        if not made:
            made.append(make())
        return made[0]

    return get


def make_blob_store(root: str) -> BlobStore:
    """A local folder, or an fsspec URL (``s3://``, ``memory://``, ...)."""
    if "://" in root and not root.startswith("file://"):
        from shipyard.artifacts.remote_fs import FsspecBlobStore

        return FsspecBlobStore(root)
    from shipyard.artifacts.local import LocalBlobStore

    return LocalBlobStore(root.removeprefix("file://"))


def local_backend(settings: Settings, *, migrate: bool = True) -> Backend:
    """Embedded backend: SQLite or PostgreSQL metadata plus a blob store, in this process."""
    from shipyard.governance.audit import AuditService
    from shipyard.registry.guard import check_run_change
    from shipyard.remote.openlineage import lineage_sink
    from shipyard.store.anchor import FileAuditAnchor
    from shipyard.store.engine import SqlTransactions, make_engine
    from shipyard.store.governance import SqlAuditStore
    from shipyard.store.migrate import upgrade
    from shipyard.store.pipelines import SqlPipelineStore
    from shipyard.store.registry import SqlRegistryStore
    from shipyard.store.schedules import SqlScheduleStore
    from shipyard.store.tracking import SqlTrackingStore
    from shipyard.tracking.artifacts import BlobRunArtifacts

    set_process_actor(settings.actor)
    engine = make_engine(settings.store_uri, sqlite_synchronous=settings.sqlite_synchronous)
    if migrate:
        upgrade(engine)
    key = settings.audit_key.get_secret_value().encode() if settings.audit_key else None
    # A SQLite store keeps its anchor in its own folder, so it may move; others name the URI.
    store_id = "sqlite" if settings.backend_kind == "sqlite" else settings.store_uri
    anchor = FileAuditAnchor(settings.audit_anchor_path, store_id, key)
    audit = AuditService(SqlAuditStore(engine), anchor, SqlTransactions(engine))
    store = SqlTrackingStore(engine)
    blobs = make_blob_store(settings.artifact_root)
    tracking = TrackingService(store, BlobRunArtifacts(blobs, store), audit)
    root = settings.artifact_root
    parts = PipelineParts(
        blobs,
        SqlPipelineStore(engine),
        SqlScheduleStore(engine),
        lineage_sink(settings),
        f"shipyard://{settings.project}",
        root if "://" in root else f"file://{Path(root).resolve()}",
    )
    registry_store = SqlRegistryStore(engine)
    tracking.add_guard(partial(check_run_change, registry_store))

    @_once
    def registry() -> RegistryService:
        from shipyard.registry.service import RegistryService

        return RegistryService(registry_store, tracking, audit)

    @_once
    def gates() -> GateService:
        from shipyard.gates.service import GateService
        from shipyard.store.gates import SqlGateStore

        return GateService(registry(), SqlGateStore(engine), audit)

    @_once
    def governance() -> Governance:
        from shipyard.governance.approvals import ApprovalService
        from shipyard.governance.identity import IdentityService
        from shipyard.store.governance import SqlApprovalStore, SqlIdentityStore

        return Governance(
            audit,
            IdentityService(SqlIdentityStore(engine), audit),
            ApprovalService(registry(), gates(), SqlApprovalStore(engine), audit),
        )

    @_once
    def feedback() -> FeedbackService:
        from shipyard.monitoring.feedback import FeedbackService
        from shipyard.predlog.source import ParquetPredictionSource
        from shipyard.store.monitoring import SqlFeedbackStore

        predictions = ParquetPredictionSource(settings.predlog_root)
        return FeedbackService(SqlFeedbackStore(engine), predictions, audit)

    @_once
    def monitors() -> MonitorService:
        from shipyard.monitoring.service import MonitorService
        from shipyard.predlog.source import ParquetPredictionSource
        from shipyard.store.monitoring import (
            SqlAlertStore,
            SqlFeedbackStore,
            SqlMonitorResultStore,
        )

        return MonitorService(
            ParquetPredictionSource(settings.predlog_root),
            SqlFeedbackStore(engine),
            SqlMonitorResultStore(engine),
            gates(),
            alerts=SqlAlertStore(engine),
            notifiers=lambda spec: build_notifiers(spec, settings),
            audit=audit,
            blobs=blobs,
            lineage=parts.store,
        )

    @_once
    def spec() -> SpecService:
        from shipyard.spec.service import SpecService
        from shipyard.store.spec import SqlSpecObjectStore

        return SpecService(
            tracking,
            registry,
            lambda: governance().identity,
            parts.schedules,
            SqlSpecObjectStore(engine),
            audit,
            monitors,
        )

    @_once
    def edge() -> EdgeService:
        from shipyard.edge.service import EdgeService
        from shipyard.predlog.writer import ParquetPredictionLog
        from shipyard.store.edge import SqlEdgeStore

        return EdgeService(
            SqlEdgeStore(engine),
            blobs,
            registry(),
            audit=audit,
            lineage=parts.store,
            sink=lambda: ParquetPredictionLog(
                settings.predlog_root, max_queue=settings.predlog_queue
            ),
        )

    @_once
    def consistency() -> ConsistencyCheck:
        from shipyard.governance.integrity import ConsistencyCheck
        from shipyard.store.maintenance import SqlStoreIntegrity

        return ConsistencyCheck(SqlStoreIntegrity(engine), blobs, audit)

    backend = Backend(
        "local",
        settings.store_uri,
        tracking,
        blobs,
        parts,
        {
            "registry": registry,
            "gates": gates,
            "governance": governance,
            "feedback": feedback,
            "monitors": monitors,
            "consistency": consistency,
            "spec": spec,
            "edge": edge,
        },
        [engine.dispose],
    )

    backend._closers.insert(0, partial(backend.release, "edge"))
    return backend


def rest_backend(settings: Settings) -> Backend:
    """Client backend: every call goes to a Shipyard server over HTTP."""
    from shipyard.remote.client import RestClient
    from shipyard.remote.edge import RestEdge
    from shipyard.remote.gates import RestGateService
    from shipyard.remote.governance import RestApprovals, RestAudit, RestIdentity
    from shipyard.remote.monitoring import RestFeedback, RestMonitoring
    from shipyard.remote.openlineage import lineage_sink
    from shipyard.remote.pipelines import RestBlobStore, RestPipelineStore, RestScheduleStore
    from shipyard.remote.registry import RestRegistry
    from shipyard.remote.spec import RestSpec
    from shipyard.remote.tracking import RestRunArtifacts, RestTrackingStore

    token = settings.token.get_secret_value() if settings.token else None
    client = RestClient(
        settings.store_uri, token=token, timeout=settings.http_timeout, actor=settings.actor
    )
    tracking = TrackingService(RestTrackingStore(client), RestRunArtifacts(client))
    registry = RestRegistry(client, tracking)
    gates = RestGateService(registry, client)
    governance = Governance(RestAudit(client), RestIdentity(client), RestApprovals(client))
    # Pipelines run here; their records and outputs live on the server.
    parts = PipelineParts(
        RestBlobStore(client),
        RestPipelineStore(client),
        RestScheduleStore(client),
        lineage_sink(settings),
        f"shipyard://{settings.project}",
        f"{settings.store_uri.rstrip('/')}/api/v1/blobs",
    )
    return Backend(
        "rest",
        settings.store_uri,
        tracking,
        None,
        parts,
        {
            "registry": lambda: registry,
            "gates": lambda: gates,
            "governance": lambda: governance,
            "feedback": lambda: RestFeedback(client),
            "monitors": _once(lambda: RestMonitoring(client, parts.blobs)),
            "spec": lambda: RestSpec(client),
            "edge": _once(lambda: RestEdge(client, registry, parts.blobs)),
        },
        [client.close],
    )


def build_notifiers(spec: MonitorSpec, settings: Settings) -> dict[str, Notifier]:
    """The notifiers a monitor names, with this installation's webhook allow list; secrets
    written as ``${NAME}`` are read from this process's environment."""
    from shipyard.remote.notify import EmailNotifier, LogNotifier, WebhookNotifier

    allow = [a for a in settings.webhook_allow.split(",") if a.strip()]
    built: dict[str, Notifier] = {}
    for name, declared in spec.notifiers.items():
        where = f"notifier {name!r}"
        item = declared.model_copy(
            update={
                "url": expand_env(declared.url, where) if declared.url else None,
                "host": expand_env(declared.host, where) if declared.host else None,
                "sender": expand_env(declared.sender, where) if declared.sender else None,
                "to": [expand_env(t, where) for t in declared.to],
            }
        )
        if item.type == "webhook":
            if not item.url:
                raise InvalidInputError(f"notifier {name!r}: a webhook needs a url")
            built[name] = WebhookNotifier(
                item.url,
                slack=item.format == "slack",
                timeout=item.timeout,
                retries=item.retries,
                allow=allow,
            )
        elif item.type == "email":
            if not item.host or not item.sender or not item.to:
                raise InvalidInputError(f"notifier {name!r}: email needs host, sender and to")
            built[name] = EmailNotifier(
                item.host, item.port, item.sender, item.to, item.timeout, allow=allow
            )
        else:
            built[name] = LogNotifier()
    return built


def build_backend(settings: Settings) -> Backend:
    """The backend that ``settings.uri`` selects."""
    if settings.backend_kind == "http":
        return rest_backend(settings)
    return local_backend(settings)
