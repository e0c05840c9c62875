"""Tracking use cases: validate input once, then hand records to the ports."""

from __future__ import annotations

import mimetypes
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from shipyard.core.actor import current_actor
from shipyard.core.audit import NULL_AUDIT, AuditLog
from shipyard.core.clock import now_ms
from shipyard.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StateTransitionError,
)
from shipyard.core.ids import new_id, parse_id
from shipyard.core.names import (
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    check_key,
    check_metric_value,
    check_name,
    check_step,
    check_text,
)
from shipyard.core.paths import check_artifact_name
from shipyard.tracking.models import (
    ArtifactRecord,
    Experiment,
    Metric,
    MetricBatch,
    Run,
    RunPage,
    RunSource,
    RunStatus,
)
from shipyard.tracking.ports import RunArtifactStore, TrackingStore
from shipyard.tracking.search import build_query

DEFAULT_EXPERIMENT = "Default"
MAX_BATCH_METRICS = 100_000
MAX_BATCH_PARAMS = 1_000


def check_run_id(run_id: object) -> str:
    """Return ``run_id`` if it is a well-formed run id."""
    parse_id(run_id, "run")  # type: ignore[arg-type]
    return run_id  # type: ignore[return-value]


def check_params(params: Mapping[str, object]) -> dict[str, str]:
    """Validate param keys and values; values become strings, as in MLflow."""
    return {
        check_key(k, "param key"): check_text(v, f"param {k!r} value", MAX_PARAM_VALUE_LENGTH)
        for k, v in params.items()
    }


def check_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    """Validate tag keys and values; values become strings."""
    return {
        check_key(k, "tag key"): check_text(v, f"tag {k!r} value", MAX_TAG_VALUE_LENGTH)
        for k, v in (tags or {}).items()
    }


def check_metrics(metrics: Iterable[Metric]) -> list[Metric]:
    """Validate every point of a batch; non-finite values are kept as MLflow keeps them.

    Points whose fields already have exactly the stored types pass with one type test
    each, and each distinct key is checked once: batches of thousands of points are the
    common case (log_batch, MLflow's client) and this runs inside the request.
    """
    checked = []
    keys: set[str] = set()
    for metric in metrics:
        key, value, step, timestamp = metric
        exact = type(metric) is Metric
        if type(key) is not str or key not in keys:
            key = check_key(key, "metric key")
            keys.add(key)
        if type(value) is not float:
            value, exact = check_metric_value(value, key), False
        if type(step) is not int or not 0 <= step < _STEP_LIMIT:
            step, exact = check_step(step), False
        if type(timestamp) is not int or not _TIME_MIN <= timestamp <= _TIME_MAX:
            raise InvalidInputError(
                f"metric {key!r} timestamp must be integer epoch ms (64-bit); got {timestamp!r}"[
                    :300
                ]
            )
        checked.append(metric if exact else Metric(key, value, step, timestamp))
    return checked


_STEP_LIMIT = 2**63
_TIME_MIN, _TIME_MAX = -(2**63), 2**63 - 1


#: The run tag naming who started the run (MLflow's ``mlflow.user`` under our prefix).
#: Written once when the run starts (from the token on a server): separation of duties
#: relies on it, so no later write may change it.
USER_TAG = "shipyard.user"

#: A check that may refuse a change to a run: ``(run_id, change, artifact name or None)``
#: with change ``"delete"``, ``"status"`` or ``"artifact"``; it raises to refuse.
RunGuard = Callable[[str, str, "str | None"], None]


class TrackingService:
    """Experiments, runs, metrics, params, tags and artifacts, checked before storage."""

    def __init__(
        self, store: TrackingStore, artifacts: RunArtifactStore, audit: AuditLog | None = None
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.audit: AuditLog = audit or NULL_AUDIT
        self.guards: list[RunGuard] = []

    def add_guard(self, guard: RunGuard) -> None:
        """Have ``guard`` vet every deletion, status change and artifact write of a run."""
        self.guards.append(guard)

    def _guard(self, run_id: str, change: str, artifact: str | None = None) -> None:
        for guard in self.guards:
            guard(run_id, change, artifact)

    # experiments -------------------------------------------------------------------------

    def create_experiment(self, name: str, tags: Mapping[str, object] | None = None) -> Experiment:
        """Create an experiment; ConflictError if the name exists."""
        return self.store.create_experiment(check_name(name, "experiment name"), check_tags(tags))

    def get_or_create_experiment(self, name: str) -> Experiment:
        """Return the experiment called ``name``, creating it on first use (race-safe)."""
        name = check_name(name, "experiment name")
        found = self.store.get_experiment_by_name(name)
        if found is not None:
            return found
        try:
            return self.store.create_experiment(name, {})
        except ConflictError:
            found = self.store.get_experiment_by_name(name)
            if found is None:
                raise
            return found

    def get_experiment(self, id_or_name: str) -> Experiment:
        """Return an experiment by id (``exp_...``) or by name."""
        if isinstance(id_or_name, str) and id_or_name.startswith("exp_"):
            parse_id(id_or_name, "exp")
            return self.store.get_experiment(id_or_name)
        name = check_name(id_or_name, "experiment name")
        found = self.store.get_experiment_by_name(name)
        if found is None:
            raise NotFoundError(f"experiment {name!r} does not exist", experiment=name)
        return found

    def find_experiment(self, name: str) -> Experiment | None:
        """The experiment with exactly this name, or None."""
        return self.store.get_experiment_by_name(check_name(name, "experiment name"))

    def list_experiments(self) -> list[Experiment]:
        """Return every experiment, oldest first."""
        return self.store.list_experiments()

    def search_experiments(
        self, filter: str | None = None, order_by: list[str] | None = None
    ) -> list[Experiment]:
        """Experiments by name or tag (``name LIKE 'fraud%' AND tags.team = 'risk'``),
        newest first unless ``order_by`` says ``name`` or ``creation_time ASC``."""
        from shipyard.core import filters

        clauses = filters.parse(filter, {"name"}, tags=True)
        found = [
            e
            for e in self.store.list_experiments()
            if filters.matches(
                {"name": e.name, **{f"tags.{k}": v for k, v in e.tags.items()}}, clauses
            )
        ]
        order = (order_by or ["creation_time DESC"])[0].strip().lower()
        if order.startswith("name"):
            found.sort(key=lambda e: e.name, reverse=order.endswith("desc"))
        else:
            found.sort(key=lambda e: (e.created_at, e.id), reverse=not order.endswith("asc"))
        return found

    # runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        source: RunSource | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (id or name; a new name is created)."""
        if isinstance(experiment, str) and experiment.startswith("exp_"):
            exp = self.get_experiment(experiment)
        else:
            exp = self.get_or_create_experiment(experiment or DEFAULT_EXPERIMENT)
        if parent_id is not None:
            check_run_id(parent_id)  # the store checks, in its transaction, that it exists
        run_name = check_name(name, "run name") if name else _default_run_name()
        run_tags = check_tags(tags)
        # Who trained it: separation of duties keeps this person from approving the model.
        run_tags.setdefault(USER_TAG, current_actor())
        with self.audit.atomic():
            run = self.store.create_run(
                exp.id, run_name, parent_id, run_tags, source or RunSource()
            )
            self.audit.record(
                "run.created",
                f"run:{run.id}",
                {"experiment": exp.id, "name": run.name, "user": run_tags[USER_TAG]},
            )
        return run

    def get_run(self, run_id: str) -> Run:
        """Return a run by id."""
        return self.store.get_run(check_run_id(run_id))

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        """Mark a run ended with ``status`` (FINISHED, FAILED or KILLED)."""
        try:
            final = RunStatus(status)
        except ValueError as exc:
            raise InvalidInputError(
                f"run status must be one of {', '.join(s.value for s in RunStatus)}; got {status!r}"
            ) from exc
        run = self.get_run(run_id)
        if run.status.is_terminal and final is not run.status:
            raise StateTransitionError(
                f"run {run.id} already ended {run.status.value}; an ended run's status "
                f"cannot become {final.value}",
                run_id=run.id,
            )
        if run.status is final:
            return run
        self._guard(run.id, "status")
        end = now_ms() if final.is_terminal else None
        with self.audit.atomic():
            ended = self.store.set_run_status(run.id, final, end)
            if final is RunStatus.KILLED:
                self.audit.record("run.killed", f"run:{run.id}", {"user": run.tags.get(USER_TAG)})
        return ended

    def delete_run(self, run_id: str) -> None:
        """Delete a run (it disappears from lookups and searches)."""
        run = self.get_run(run_id)
        self._guard(run.id, "delete")
        with self.audit.atomic():
            self.store.delete_run(run.id)
            self.audit.record("run.deleted", f"run:{run.id}", {"user": run.tags.get(USER_TAG)})

    def heartbeat(self, run_id: str) -> None:
        """Say the run's client is alive (the SDK does this in the background)."""
        self.store.heartbeat(check_run_id(run_id), now_ms())

    def expire_stale_runs(self, silent_for: float) -> list[str]:
        """End as KILLED the RUNNING runs with no heartbeat or write for ``silent_for`` s.

        A client killed with SIGKILL, or a machine that lost power, never ends its run; this
        is how such runs stop showing as running. Each one is audited.
        """
        if not silent_for > 0:
            raise InvalidInputError(
                f"silence must be a positive number of seconds; got {silent_for}"
            )
        at = now_ms()
        with self.audit.atomic():
            expired = self.store.expire_runs(at - int(silent_for * 1000), at)
            for run_id in expired:
                self.audit.record(
                    "run.expired", f"run:{run_id}", {"silent_for_seconds": silent_for}
                )
        return expired

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        batch_id: str | None = None,
    ) -> None:
        """Write metrics, params and tags of one run together (all or nothing)."""
        checked = check_metrics(metrics)
        if len(checked) > MAX_BATCH_METRICS:
            raise InvalidInputError(
                f"a batch holds at most {MAX_BATCH_METRICS} metrics; got {len(checked)}"
            )
        params_checked = check_params(params or {})
        if len(params_checked) > MAX_BATCH_PARAMS:
            raise InvalidInputError(
                f"a batch holds at most {MAX_BATCH_PARAMS} params; got {len(params_checked)}"
            )
        if batch_id is not None:
            parse_id(batch_id, "batch")
        tags_checked = check_tags(tags)
        if USER_TAG in tags_checked:
            raise PermissionDeniedError(
                f"tag {USER_TAG} records who started the run and is written only then; "
                "it cannot be set or changed afterwards",
                run_id=run_id,
            )
        self.store.log_batch(
            MetricBatch(
                run_id=check_run_id(run_id),
                batch_id=batch_id or new_id("batch"),
                metrics=checked,
                params=params_checked,
                tags=tags_checked,
            )
        )

    def write_batch(self, batch: MetricBatch) -> None:
        """Write a batch assembled by a MetricBuffer (its points are already checked)."""
        self.store.log_batch(batch)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of one metric of a run."""
        return self.store.get_metric_history(check_run_id(run_id), check_key(key, "metric key"))

    def search_runs(
        self,
        experiments: list[str] | str | None = None,
        filter: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """Search runs of experiments (ids or names) with MLflow's filter syntax."""
        query = build_query(filter, order_by, max_results, page_token)
        if experiments is None:
            ids = [e.id for e in self.store.list_experiments()]
        else:
            names = [experiments] if isinstance(experiments, str) else list(experiments)
            ids = [self.get_experiment(e).id for e in names]
        return self.store.search_runs(ids, query)

    # artifacts ----------------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, path: Path | str, name: str | None = None
    ) -> ArtifactRecord:
        """Store a local file as an artifact of the run, by default under its file name."""
        source = Path(path)
        if not source.is_file():
            raise InvalidInputError(f"artifact source must be a readable file; got {str(path)!r}")
        artifact_name = check_artifact_name(name or source.name)
        media_type = mimetypes.guess_type(artifact_name)[0] or "application/octet-stream"
        return self.log_chunks(run_id, artifact_name, _file_chunks(source), media_type)

    def log_chunks(
        self,
        run_id: str,
        name: str,
        chunks: Iterable[bytes],
        media_type: str | None = None,
        max_size: int | None = None,
    ) -> ArtifactRecord:
        """Store streamed bytes as an artifact of the run (an upload, a generated file)."""
        artifact_name = check_artifact_name(name)
        media = media_type or mimetypes.guess_type(artifact_name)[0] or "application/octet-stream"
        self.get_run(run_id)
        self._guard(run_id, "artifact", artifact_name)
        return self.artifacts.log_chunks(run_id, artifact_name, chunks, media, max_size)

    def log_bytes(self, run_id: str, data: bytes, name: str) -> ArtifactRecord:
        """Store bytes as an artifact of the run."""
        return self.log_chunks(run_id, name, [data])

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """Return the run's artifacts by name."""
        return self.artifacts.list_artifacts(check_run_id(run_id))

    def download_artifact(self, run_id: str, name: str, dest: Path | str) -> Path:
        """Copy an artifact to ``dest`` (a file path, or a folder to put it in), verified."""
        record = self.artifacts.get_artifact(check_run_id(run_id), check_artifact_name(name))
        target = Path(dest)
        if target.is_dir():
            target = target / Path(record.name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            with partial.open("wb") as out:
                for chunk in self.artifacts.read_artifact(run_id, record.name):
                    out.write(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def read_artifact_bytes(self, run_id: str, name: str) -> bytes:
        """Return an artifact's bytes (for small artifacts such as JSON documents)."""
        return b"".join(self.artifacts.read_artifact(check_run_id(run_id), name))


def _default_run_name() -> str:
    """A readable default name, as MLflow gives one: adjective-noun-number."""
    adjectives = ("brisk", "calm", "deft", "keen", "lucid", "nimble", "quiet", "sturdy", "swift")
    nouns = ("anchor", "beacon", "brig", "cutter", "harbor", "keel", "mast", "sloop", "tide")
    return f"{secrets.choice(adjectives)}-{secrets.choice(nouns)}-{secrets.randbelow(1000)}"


__all__ = ["DEFAULT_EXPERIMENT", "TrackingService"]


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk
