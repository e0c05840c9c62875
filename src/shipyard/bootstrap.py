"""Composition root: Settings -> adapters -> services.

Two families of adapters serve the same services: local (SQLAlchemy store and blob store
in this process) for ``sqlite:``/``postgresql:`` URIs, and remote (httpx to a Shipyard
server) for ``http(s):`` URIs. The SDK, CLI and server only ever see a :class:`Backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from shipyard.core.blobs import BlobStore
from shipyard.core.errors import StoreError
from shipyard.core.settings import Settings
from shipyard.pipelines.ports import PipelineStore, ScheduleStore
from shipyard.registry.service import RegistryService
from shipyard.tracking.service import TrackingService


@dataclass(frozen=True)
class PipelineParts:
    """What pipeline runs need from a local backend: the blob store and the run records."""

    blobs: BlobStore
    store: PipelineStore
    schedules: ScheduleStore


@dataclass
class Backend:
    """The services for one store, and how to release what they hold."""

    kind: Literal["local", "rest"]
    uri: str
    tracking: TrackingService
    blobs: BlobStore | None = None
    pipelines: PipelineParts | None = None
    registry_service: RegistryService | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def registry(self) -> RegistryService:
        """The model registry of this store."""
        if self.registry_service is None:
            raise StoreError(
                f"the model registry is not available through {self.uri} yet: point "
                "SHIPYARD_URI at the database and artifact store directly"
            )
        return self.registry_service

    def close(self) -> None:
        """Release connections and pools."""
        for closer in self._closers:
            closer()
        self._closers.clear()


def make_blob_store(root: str) -> BlobStore:
    """A local folder, or an fsspec URL (``s3://``, ``memory://``, ...)."""
    if "://" in root and not root.startswith("file://"):
        from shipyard.artifacts.remote_fs import FsspecBlobStore

        return FsspecBlobStore(root)
    from shipyard.artifacts.local import LocalBlobStore

    return LocalBlobStore(root.removeprefix("file://"))


def local_backend(settings: Settings, *, migrate: bool = True) -> Backend:
    """Embedded backend: SQLite or PostgreSQL metadata plus a blob store, in this process."""
    from shipyard.store.engine import make_engine
    from shipyard.store.migrate import upgrade
    from shipyard.store.pipelines import SqlPipelineStore
    from shipyard.store.registry import SqlRegistryStore
    from shipyard.store.schedules import SqlScheduleStore
    from shipyard.store.tracking import SqlTrackingStore
    from shipyard.tracking.artifacts import BlobRunArtifacts

    engine = make_engine(settings.store_uri, sqlite_synchronous=settings.sqlite_synchronous)
    if migrate:
        upgrade(engine)
    store = SqlTrackingStore(engine)
    blobs = make_blob_store(settings.artifact_root)
    tracking = TrackingService(store, BlobRunArtifacts(blobs, store))
    parts = PipelineParts(blobs, SqlPipelineStore(engine), SqlScheduleStore(engine))
    registry = RegistryService(SqlRegistryStore(engine), tracking)
    return Backend("local", settings.store_uri, tracking, blobs, parts, registry, [engine.dispose])


def rest_backend(settings: Settings) -> Backend:
    """Client backend: every call goes to a Shipyard server over HTTP."""
    from shipyard.remote.client import RestClient
    from shipyard.remote.tracking import RestRunArtifacts, RestTrackingStore

    token = settings.token.get_secret_value() if settings.token else None
    client = RestClient(settings.store_uri, token=token, timeout=settings.http_timeout)
    tracking = TrackingService(RestTrackingStore(client), RestRunArtifacts(client))
    return Backend("rest", settings.store_uri, tracking, None, None, None, [client.close])


def build_backend(settings: Settings) -> Backend:
    """The backend that ``settings.uri`` selects."""
    if settings.backend_kind == "http":
        return rest_backend(settings)
    return local_backend(settings)
