"""``shipyard import mlflow``: experiments, runs with every metric point, artifacts and
registered models brought over from MLflow, with a report of what could not be.

Runs keep their names, params, tags, full metric history, status and artifacts; MLflow 3's
logged models land inside their run (as Shipyard keeps them); registered versions go
through Shipyard's registration, so every package is checked (a pickle stays untrusted:
it registers, and loads only with ``trusted=True``). Importing again skips what came
before (each run and version remembers its MLflow id in a tag). Not brought over, and
said so in the report: deleted runs, the ``champion`` alias and the Staging/Production
stages (in Shipyard those move through gates and approvals), versions whose files cannot
be found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.core.errors import ShipyardError
from shipyard.migrate.sources import MlflowSource, SourceLoggedModel, SourceRun
from shipyard.registry.ports import ModelRegistry
from shipyard.registry.service import CHAMPION
from shipyard.tracking.models import RunSource
from shipyard.tracking.service import USER_TAG, TrackingService

RUN_TAG = "mlflow.import.run_id"
VERSION_TAG = "mlflow.import.version"
_POINTS_PER_BATCH = 50_000
_PARAMS_PER_BATCH = 500
Progress = Callable[[str, int], None]


@dataclass
class ImportReport:
    """What an import brought over, what it skipped as already there, and what it could not."""

    experiments: int = 0
    runs: int = 0
    runs_skipped: int = 0
    metric_points: int = 0
    params: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    logged_models: int = 0
    models: int = 0
    versions: int = 0
    versions_skipped: int = 0
    aliases: int = 0
    run_ids: dict[str, str] = field(default_factory=dict)
    version_numbers: dict[str, int] = field(default_factory=dict)
    not_brought: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (``--json``)."""
        return dict(self.__dict__)


def _ordered(runs: list[SourceRun]) -> list[SourceRun]:
    """Parents before their children (MLflow keeps the parent in a tag)."""
    by_id = {r.id: r for r in runs}
    done: set[str] = set()
    ordered: list[SourceRun] = []

    def visit(run: SourceRun, depth: int = 0) -> None:
        if run.id in done or depth > 100:
            return
        parent = by_id.get(run.tags.get("mlflow.parentRunId", ""))
        if parent is not None:
            visit(parent, depth + 1)
        done.add(run.id)
        ordered.append(run)

    for run in sorted(runs, key=lambda r: (r.start_time, r.id)):
        visit(run)
    return ordered


class MlflowImporter:
    """Copies one MLflow source into Shipyard's tracking store and registry."""

    def __init__(
        self,
        source: MlflowSource,
        tracking: TrackingService,
        registry: ModelRegistry,
        progress: Progress | None = None,
    ) -> None:
        self.source = source
        self.tracking = tracking
        self.registry = registry
        self.progress = progress or (lambda _what, _n: None)
        self.report = ImportReport()
        # MLflow logged model id -> (Shipyard run, artifact folder)
        self.logged: dict[str, tuple[str, str]] = {}
        # MLflow run id + artifact path prefix of its logged models, for runs:/ sources
        self.run_paths: dict[str, str] = {}

    def run(self) -> ImportReport:
        """Import everything; return the report."""
        for exp_id, name, tags in self.source.experiments():
            self._experiment(exp_id, name, tags)
        self._registry()
        return self.report

    # tracking -----------------------------------------------------------------------------

    def _already(self, experiment_id: str) -> dict[str, str]:
        """MLflow run id -> Shipyard run id of runs an earlier import brought."""
        found: dict[str, str] = {}
        token = None
        while True:
            page = self.tracking.search_runs(
                [experiment_id], f"tags.`{RUN_TAG}` LIKE '%'", None, 10_000, token
            )
            found.update({r.tags[RUN_TAG]: r.id for r in page.runs})
            token = page.next_page_token
            if not token:
                return found

    def _experiment(self, exp_id: str, name: str, tags: dict[str, str]) -> None:
        exp = self.tracking.find_experiment(name)
        if exp is None:
            exp = self.tracking.create_experiment(
                name, {**tags, "mlflow.import.experiment_id": exp_id}
            )
        self.report.experiments += 1
        known = self._already(exp.id)
        models = self.source.logged_models(exp_id)
        by_run: dict[str, list[SourceLoggedModel]] = {}
        for model in models:
            by_run.setdefault(model.run_id or "", []).append(model)
        for run in _ordered(self.source.runs(exp_id)):
            if run.id in known:
                self.report.runs_skipped += 1
                self.report.run_ids[run.id] = known[run.id]
                for model in by_run.get(run.id, []):
                    self.logged[model.id] = (known[run.id], model.name)
                continue
            try:
                new_id = self._run(exp.id, run, by_run.get(run.id, []))
            except ShipyardError as exc:
                self.report.not_brought.append(f"run {run.id} ({run.name}): {exc.message}")
                continue
            self.report.run_ids[run.id] = new_id
            self.progress("runs", 1)
        for model in by_run.get("", []):
            self.report.not_brought.append(
                f"logged model {model.id} ({model.name}) has no run; log it within a run"
            )

    def _run(self, experiment_id: str, run: SourceRun, models: list[SourceLoggedModel]) -> str:
        tags = {k: v for k, v in run.tags.items() if not k.startswith("shipyard.")}
        tags[RUN_TAG] = run.id
        if user := run.tags.get("mlflow.user"):
            tags[USER_TAG] = user
        parent = self.report.run_ids.get(run.tags.get("mlflow.parentRunId", ""))
        if run.tags.get("mlflow.parentRunId") and parent is None:
            self.report.not_brought.append(
                f"run {run.id}: its parent {run.tags['mlflow.parentRunId']} is not in the "
                "source; imported without a parent"
            )
        if parent:
            tags["mlflow.parentRunId"] = parent
        created = self.tracking.create_run(
            experiment_id,
            name=run.name or None,
            parent_id=parent,
            tags=tags,
            source=RunSource(
                run.tags.get("mlflow.source.git.commit") or None,
                run.tags.get("mlflow.source.name") or None,
            ),
        )
        params = list(run.params.items())
        for i in range(0, len(params), _PARAMS_PER_BATCH):
            self.tracking.log_batch(created.id, params=dict(params[i : i + _PARAMS_PER_BATCH]))
        self.report.params += len(params)
        for key in run.metric_keys:
            points = self.source.history(run, key)
            for i in range(0, len(points), _POINTS_PER_BATCH):
                self.tracking.log_batch(created.id, points[i : i + _POINTS_PER_BATCH])
            self.report.metric_points += len(points)
        taken: set[str] = set()  # top-level names of the run's artifacts
        try:
            for path, size, opener in self.source.run_files(run):
                self.tracking.log_chunks(created.id, path, opener())
                taken.add(path.split("/", 1)[0])
                self.report.artifacts += 1
                self.report.artifact_bytes += size
        except ShipyardError as exc:
            self.report.not_brought.append(f"artifacts of run {run.id}: {exc.message}")
        for model in models:
            # As the server keeps them: under the model's name, unless that is taken.
            folder = model.name if model.name not in taken else f"models/{model.id}"
            taken.add(folder.split("/", 1)[0])
            for path, size, opener in self.source.model_files(model):
                self.tracking.log_chunks(created.id, f"{folder}/{path}", opener())
                self.report.artifact_bytes += size
            self.logged[model.id] = (created.id, folder)
            self.report.logged_models += 1
        status = run.status
        if status in ("RUNNING", "SCHEDULED"):
            self.report.not_brought.append(
                f"run {run.id} was still {status} in MLflow; imported as KILLED"
            )
            status = "KILLED"
        self.tracking.end_run(created.id, status)
        self.report.runs += 1
        return created.id

    # registry -----------------------------------------------------------------------------

    def _location(self, version: Any) -> tuple[str, str] | None:
        """The Shipyard run and folder holding an MLflow version's files."""
        source = version.source
        model_id = version.model_id
        if source.startswith("models:/") and "/" not in source.removeprefix("models:/"):
            model_id = source.removeprefix("models:/")
        if model_id and model_id in self.logged:
            return self.logged[model_id]
        if source.startswith("runs:/"):
            run_id, _, path = source.removeprefix("runs:/").partition("/")
            new = self.report.run_ids.get(run_id)
            return (new, path.strip("/")) if new and path else None
        marker = f"/{version.run_id}/artifacts/" if version.run_id else None
        if marker and marker in source and version.run_id in self.report.run_ids:
            path = source.split(marker, 1)[1].strip("/")
            return self.report.run_ids[version.run_id], path
        return None

    def _registry(self) -> None:
        for model in self.source.registered_models():
            existing = {}
            try:
                self.registry.get_model(model.name)
                existing = {
                    v.tags[VERSION_TAG]: v.version
                    for v in self.registry.list_versions(model.name)
                    if VERSION_TAG in v.tags
                }
            except ShipyardError:
                self.registry.create_model(
                    model.name, description=model.description, tags=model.tags
                )
            self.report.models += 1
            numbers: dict[int, int] = {}
            for version in model.versions:
                key = f"{model.name}/{version.version}"
                if key in existing:
                    numbers[version.version] = existing[key]
                    self.report.versions_skipped += 1
                    continue
                where = self._location(version)
                if where is None:
                    self.report.not_brought.append(
                        f"version {version.version} of {model.name}: its files ({version.source}) "
                        "are not in an imported run"
                    )
                    continue
                try:
                    mv = self.registry.register(
                        model.name,
                        run_id=where[0],
                        artifact_path=where[1],
                        description=version.description,
                        tags={**version.tags, VERSION_TAG: key},
                        created_by=self.tracking.get_run(where[0]).tags.get(USER_TAG, "mlflow"),
                    )
                except ShipyardError as exc:
                    self.report.not_brought.append(
                        f"version {version.version} of {model.name}: {exc.message}"
                    )
                    continue
                numbers[version.version] = mv.version
                self.report.version_numbers[key] = mv.version
                self.report.versions += 1
                if version.stage in ("Staging", "Production"):
                    self.report.not_brought.append(
                        f"version {version.version} of {model.name} was in stage "
                        f"{version.stage}: in Shipyard it is a candidate until its gates pass "
                        "and it is approved"
                    )
            for alias, number in sorted(model.aliases.items()):
                if alias == CHAMPION:
                    self.report.not_brought.append(
                        f"alias {alias} of {model.name}: champion moves through gates and "
                        "approvals in Shipyard (shipyard models request-promotion)"
                    )
                    continue
                if number not in numbers:
                    continue
                try:
                    self.registry.set_alias(model.name, alias, numbers[number])
                    self.report.aliases += 1
                except ShipyardError as exc:
                    self.report.not_brought.append(f"alias {alias} of {model.name}: {exc.message}")


def import_mlflow(
    source: MlflowSource,
    tracking: TrackingService,
    registry: ModelRegistry,
    progress: Progress | None = None,
) -> ImportReport:
    """Bring an MLflow installation's data into Shipyard (see the module docstring)."""
    return MlflowImporter(source, tracking, registry, progress).run()
