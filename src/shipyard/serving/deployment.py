"""Deployments: which model versions an endpoint serves, and how traffic splits.

A deployment has a primary model URI, an optional canary (a second URI taking a fixed
percentage of requests, chosen by a hash of the request id so a retried request lands on
the same version) and shadows (URIs that see a copy of every request; their answers are
logged, never returned). URIs with an alias are followed: :meth:`Deployment.refresh`
re-resolves them and swaps the loaded model by one reference assignment, so a request in
flight finishes on the model it started with.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipyard.core.errors import InvalidInputError, ShipyardError
from shipyard.core.names import check_name
from shipyard.registry.models import ModelVersion, parse_model_uri
from shipyard.registry.package import LoadedModel

logger = logging.getLogger(__name__)

Loader = Callable[[str], tuple[LoadedModel, ModelVersion | None]]


@dataclass(frozen=True)
class DeploymentSpec:
    """What to serve: a primary URI, an optional canary with its share, shadow URIs."""

    name: str
    model: str
    canary: str | None = None
    canary_percent: int = 0
    shadows: tuple[str, ...] = ()
    poll_interval: float = 10.0
    max_rows: int = 10_000
    # Replay (backfills, demos): log each request at the time its x-shipyard-event-time
    # header gives (epoch ms or ISO 8601) instead of now.
    replay: bool = False
    # Decide at this positive-class score instead of the model's own 0.5 (e.g. the cut a
    # gate policy's alert budget chose); binary classifiers with 0/1 labels only.
    threshold: float | None = None
    # Admission control: at most this many requests wait for the model; past it, or past
    # queue_timeout seconds of waiting, a request is shed with 503 and Retry-After.
    max_queue: int = 64
    queue_timeout: float = 1.0

    def __post_init__(self) -> None:
        check_name(self.name, "deployment name")
        for uri in (self.model, self.canary, *self.shadows):
            if uri is not None:
                parse_model_uri(uri)
        if self.canary is None and self.canary_percent:
            raise InvalidInputError("canary_percent needs a canary model URI")
        if not 0 <= self.canary_percent <= 100:
            raise InvalidInputError(f"canary share is 0-100 percent; got {self.canary_percent}")
        if self.poll_interval < 0:
            raise InvalidInputError("poll interval must be >= 0 seconds (0 turns polling off)")
        if self.max_rows < 1:
            raise InvalidInputError("max rows must be at least 1")
        if self.max_queue < 1:
            raise InvalidInputError(f"max queue must be at least 1; got {self.max_queue}")
        if not 0 < self.queue_timeout <= 600:
            raise InvalidInputError(
                f"queue timeout must be in (0, 600] seconds; got {self.queue_timeout}"
            )
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise InvalidInputError(f"threshold must be between 0 and 1; got {self.threshold}")

    @classmethod
    def from_yaml(cls, path: Path) -> DeploymentSpec:
        """Read a ``kind: Deployment`` document (``apiVersion: shipyard.dev/v1``)."""
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"cannot read deployment file {path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("kind") != "Deployment":
            raise InvalidInputError(f"{path} is not a 'kind: Deployment' document")
        meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
        canary = spec.get("canary") or {}
        try:
            return cls(
                name=meta.get("name", ""),
                model=spec["model"],
                canary=canary.get("model"),
                canary_percent=int(canary.get("percent", 0)),
                shadows=tuple(spec.get("shadows") or ()),
                poll_interval=float(spec.get("pollInterval", 10.0)),
                max_rows=int(spec.get("maxRows", 10_000)),
                max_queue=int(spec.get("maxQueue", 64)),
                queue_timeout=float(spec.get("queueTimeout", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"deployment file {path}: {exc}") from exc


@dataclass
class Served:
    """One loaded version and how it is labelled in responses, metrics and the log."""

    uri: str
    role: str  # primary, canary or shadow
    model: LoadedModel
    version: ModelVersion | None

    @property
    def model_name(self) -> str:
        """The registered model name (or the run id for a runs:/ URI)."""
        if self.version is not None:
            return self.version.name
        return parse_model_uri(self.uri).run_id

    @property
    def version_label(self) -> str:
        """The registry version number as text ("run" for runs:/ URIs)."""
        return str(self.version.version) if self.version is not None else "run"


@dataclass
class Deployment:
    """The live routing table of one endpoint."""

    spec: DeploymentSpec
    loader: Loader
    primary: Served = field(init=False)
    canary: Served | None = field(init=False, default=None)
    shadows: list[Served] = field(init=False, default_factory=list)
    swaps: int = field(init=False, default=0)
    on_swap: Callable[[Served, Served], None] | None = None

    def __post_init__(self) -> None:
        self.primary = self._load(self.spec.model, "primary")
        if self.spec.canary:
            self.canary = self._load(self.spec.canary, "canary")
        self.shadows = [self._load(u, "shadow") for u in self.spec.shadows]
        self._lock = threading.Lock()

    def _load(self, uri: str, role: str) -> Served:
        model, version = self.loader(uri)
        return Served(uri, role, model, version)

    @property
    def model_name(self) -> str:
        """The name clients address in ``/v2/models/{name}``."""
        return self.primary.model_name

    def choose(self, request_id: str) -> Served:
        """The version that answers this request (sticky per request id)."""
        canary = self.canary
        if canary is not None and self.spec.canary_percent:
            bucket = zlib.crc32(request_id.encode()) % 100
            if bucket < self.spec.canary_percent:
                return canary
        return self.primary

    def serving(self) -> list[Served]:
        """Every loaded version: primary, canary, shadows."""
        return [self.primary, *([self.canary] if self.canary else []), *self.shadows]

    def find_version(self, version: str) -> Served | None:
        """The served entry with this registry version number, if any."""
        return next((s for s in self.serving() if s.version_label == version), None)

    def refresh(self) -> list[tuple[Served, Served]]:
        """Re-resolve aliases; load and swap in any version that moved. Returns the swaps."""
        if not self._lock.acquire(blocking=False):
            return []
        swapped: list[tuple[Served, Served]] = []
        try:
            for attr in ("primary", "canary"):
                current: Served | None = getattr(self, attr)
                if current is not None and "@" in current.uri:
                    new = self._maybe_reload(current)
                    if new is not None:
                        setattr(self, attr, new)  # one reference store: atomic for readers
                        swapped.append((current, new))
            for i, shadow in enumerate(list(self.shadows)):
                if "@" in shadow.uri:
                    new = self._maybe_reload(shadow)
                    if new is not None:
                        self.shadows[i] = new
                        swapped.append((shadow, new))
        finally:
            self._lock.release()
        for old, new in swapped:
            self.swaps += 1
            logger.info(
                "%s: %s moved from version %s to %s",
                self.spec.name,
                old.uri,
                old.version_label,
                new.version_label,
            )
            if self.on_swap is not None:
                self.on_swap(old, new)
        return swapped

    def _maybe_reload(self, current: Served) -> Served | None:
        try:
            model, version = self.loader(current.uri)
        except ShipyardError as exc:
            # Keep serving what is loaded: an alias deleted or a store blip is not an outage.
            logger.warning("%s: cannot refresh %s: %s", self.spec.name, current.uri, exc)
            return None
        if version is not None and current.version is not None and version.id == current.version.id:
            return None
        return Served(current.uri, current.role, model, version)


class Poller:
    """A daemon thread that calls ``deployment.refresh`` every ``interval`` seconds."""

    def __init__(self, deployment: Deployment, interval: float) -> None:
        self.deployment = deployment
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shipyard-alias-poll", daemon=True)

    def start(self) -> None:
        """Start polling (no-op when the interval is 0)."""
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.deployment.refresh()
            except Exception:
                logger.exception("alias refresh failed")


def row_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """Flatten model outputs to 1-D columns for the prediction log."""
    flat: dict[str, Any] = {"prediction": outputs["predict"]}
    proba = outputs.get("predict_proba")
    if proba is not None and getattr(proba, "ndim", 1) == 2:
        for j in range(proba.shape[1]):
            flat[f"proba_{j}"] = proba[:, j]
    return flat
