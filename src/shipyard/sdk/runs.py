"""The fluent tracking API: ``shipyard.start_run``, ``log_metric`` and friends."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from shipyard.core.errors import InvalidInputError
from shipyard.core.settings import Settings
from shipyard.sdk import context
from shipyard.sdk._source import detect_source
from shipyard.sdk.active_run import ActiveRun
from shipyard.tracking.models import ArtifactRecord, Experiment, Metric, Run, RunPage, RunStatus
from shipyard.tracking.service import DEFAULT_EXPERIMENT, TrackingService

if TYPE_CHECKING:
    import pandas as pd


def set_uri(uri: str | None) -> None:
    """Point the SDK at a store: a folder, ``sqlite:///``, ``postgresql+psycopg://`` or ``http://``.

    Active runs end first. ``None`` goes back to ``SHIPYARD_URI`` or ``./.shipyard``.
    """
    base = Settings()
    context.replace(base.model_copy(update={"uri": Settings(uri=uri).uri if uri else base.uri}))


def get_uri() -> str:
    """The store URI the SDK writes to."""
    return context.current().settings.store_uri


def _tracking() -> TrackingService:
    return context.current().get_backend().tracking


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    parent: str | Run | ActiveRun | None = None,
    tags: Mapping[str, object] | None = None,
    *,
    nested: bool = False,
) -> ActiveRun:
    """Start a run and make it the active one; use it as a context manager.

    On leaving a ``with`` block the run ends FINISHED, or FAILED if an exception escaped.
    A run started while another is active must say ``nested=True`` (or pass ``parent``);
    it then becomes a child of the active run.
    """
    ctx = context.current()
    active = ctx.runs[-1] if ctx.runs else None
    parent_id = parent.id if isinstance(parent, Run | ActiveRun) else parent
    if active is not None and parent_id is None:
        if not nested:
            raise InvalidInputError(
                f"run {active.id} is already active; end it first, or pass nested=True "
                "to start a child run",
                run_id=active.id,
            )
        parent_id = active.id
    if experiment is None:
        experiment = (
            active.info.experiment_id
            if active is not None
            else ctx.experiment or DEFAULT_EXPERIMENT
        )
    backend = ctx.get_backend()
    run = backend.tracking.create_run(
        experiment, name=run_name, parent_id=parent_id, tags=tags, source=detect_source()
    )
    handle = ActiveRun(
        run,
        backend,
        buffer_size=ctx.settings.metric_buffer_size,
        flush_interval=ctx.settings.flush_interval,
        on_end=lambda r: _ended(ctx, r),
    )
    ctx.runs.append(handle)
    return handle


def _ended(ctx: context.Context, run: ActiveRun) -> None:
    if run in ctx.runs:
        ctx.runs.remove(run)
    ctx.last_run_id = run.id


def last_active_run() -> Run | None:
    """The run that ended last in this process (MLflow's ``last_active_run``), or None."""
    last = context.current().last_run_id
    return _tracking().get_run(last) if last else None


def set_tracking_uri(uri: str | None) -> None:
    """MLflow's name for :func:`set_uri`."""
    set_uri(uri)


def get_tracking_uri() -> str:
    """MLflow's name for :func:`get_uri`."""
    return get_uri()


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the one new runs go to (created by name if missing), as MLflow's
    ``set_experiment`` does; returns it."""
    tracking = _tracking()
    if experiment_id is not None:
        exp = tracking.get_experiment(experiment_id)
    elif experiment_name is not None:
        exp = tracking.get_or_create_experiment(experiment_name)
    else:
        raise InvalidInputError("set_experiment needs experiment_name or experiment_id")
    context.current().experiment = exp.id
    return exp


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment of that exact name, or None (MLflow's ``get_experiment_by_name``)."""
    return _tracking().find_experiment(name)


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, object] | None = None
) -> str:
    """Create an experiment and return its id, as MLflow does (Shipyard chooses where its
    artifacts live: ``artifact_location`` is refused rather than ignored)."""
    if artifact_location is not None:
        raise InvalidInputError(
            "Shipyard stores artifacts in its own store (SHIPYARD_ARTIFACTS); "
            "artifact_location cannot be set per experiment"
        )
    return _tracking().create_experiment(name, tags).id


def search_experiments(
    filter_string: str | None = None,
    max_results: int | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """Experiments by name or tag (``name LIKE 'fraud%'``), newest first unless ordered."""
    found = _tracking().search_experiments(filter_string, order_by)
    return found[:max_results] if max_results else found


def delete_run(run_id: str) -> None:
    """Delete a run (refused while a registered version is built from it)."""
    _tracking().delete_run(run_id)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> None:
    """Log every file under ``local_dir`` (under ``artifact_path`` in the run), as MLflow's
    ``log_artifacts`` does."""
    root = Path(local_dir)
    if not root.is_dir():
        raise InvalidInputError(f"log_artifacts needs a folder; got {str(local_dir)!r}")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        log_artifact(path, f"{artifact_path.strip('/')}/{relative}" if artifact_path else relative)


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    runs = context.current().runs
    return runs[-1] if runs else None


def _require_run() -> ActiveRun:
    run = active_run()
    if run is None:
        # MLflow starts a run implicitly here; we do the same so scripts port unchanged.
        run = start_run()
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> Run | None:
    """End the active run (flushing its metrics); no-op when none is active."""
    run = active_run()
    return run.end(status) if run is not None else None


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one metric point to the active run (buffered, written in bulk)."""
    _require_run().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log several metrics at one step."""
    _require_run().log_metrics(metrics, step)


def log_param(key: str, value: object) -> None:
    """Log a param (immutable once set, as in MLflow)."""
    _require_run().log_params({key: value})


def log_params(params: Mapping[str, object]) -> None:
    """Log several params."""
    _require_run().log_params(params)


def set_tag(key: str, value: object) -> None:
    """Set a tag on the active run (tags may change)."""
    _require_run().set_tags({key: value})


def set_tags(tags: Mapping[str, object]) -> None:
    """Set several tags."""
    _require_run().set_tags(tags)


def log_artifact(path: str | Path, name: str | None = None) -> ArtifactRecord:
    """Store a file as an artifact of the active run (by default under its file name)."""
    run = _require_run()
    return run.backend.tracking.log_artifact(run.id, path, name)


def log_text(text: str, name: str) -> ArtifactRecord:
    """Store a string as a UTF-8 artifact."""
    run = _require_run()
    return run.backend.tracking.log_bytes(run.id, text.encode("utf-8"), name)


def log_dict(data: Mapping[str, Any] | list[Any], name: str) -> ArtifactRecord:
    """Store a dict as JSON (or YAML when ``name`` ends in .yaml/.yml)."""
    if name.endswith((".yaml", ".yml")):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=2, sort_keys=False, default=str)
    return log_text(text, name)


def log_figure(figure: Any, name: str) -> ArtifactRecord:
    """Store a matplotlib figure as an image (format from the name's extension)."""
    if not hasattr(figure, "savefig"):
        raise InvalidInputError(
            f"log_figure needs a matplotlib Figure (with savefig); got {type(figure).__name__}"
        )
    fmt = Path(name).suffix.lstrip(".") or "png"
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    run = _require_run()
    return run.backend.tracking.log_bytes(run.id, buffer.getvalue(), name)


def flush() -> None:
    """Write the active run's buffered metrics now."""
    run = active_run()
    if run is not None:
        run.flush()


def get_run(run_id: str) -> Run:
    """Fetch a run with its params, latest metrics and tags."""
    return _tracking().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point logged for one metric of a run."""
    return _tracking().get_metric_history(run_id, key)


@overload
def search_runs(
    experiment: str | list[str] | None = ...,
    filter: str | None = ...,
    order_by: list[str] | None = ...,
    max_results: int = ...,
    page_token: str | None = ...,
    output_format: Literal["list"] = ...,
) -> RunPage: ...


@overload
def search_runs(
    experiment: str | list[str] | None = ...,
    filter: str | None = ...,
    order_by: list[str] | None = ...,
    max_results: int = ...,
    page_token: str | None = ...,
    *,
    output_format: Literal["pandas"],
) -> pd.DataFrame: ...


def search_runs(
    experiment: str | list[str] | None = None,
    filter: str | None = None,
    order_by: list[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    output_format: Literal["list", "pandas"] = "list",
) -> RunPage | pd.DataFrame:
    """Search runs with MLflow's filter syntax.

    ``output_format="list"`` returns one page (a sequence of runs with ``.token`` for the
    next, like MLflow's ``PagedList``); ``"pandas"`` returns up to ``max_results`` runs,
    across pages, as MLflow's DataFrame: ``run_id``, ``experiment_id``, ``status``,
    ``artifact_uri``, ``start_time``, ``end_time``, then ``metrics.*``, ``params.*``, ``tags.*``.
    """
    tracking = _tracking()
    if output_format == "list":
        return tracking.search_runs(experiment, filter, order_by, max_results, page_token)
    if output_format != "pandas":
        raise InvalidInputError(f"output_format must be 'list' or 'pandas'; got {output_format!r}")
    found: list[Run] = []
    token = page_token
    while len(found) < max_results:
        page = tracking.search_runs(
            experiment, filter, order_by, min(max_results - len(found), 1000), token
        )
        found.extend(page.runs)
        token = page.next_page_token
        if token is None:
            break
    return runs_frame(found)


def runs_frame(found: list[Run]) -> pd.DataFrame:
    """Runs as MLflow's ``search_runs`` DataFrame (times as UTC datetimes)."""
    import pandas as pd

    rows = []
    for run in found:
        row: dict[str, object] = {
            "run_id": run.id,
            "experiment_id": run.experiment_id,
            "status": run.status.value,
            "artifact_uri": f"runs:/{run.id}",
            "start_time": pd.Timestamp(run.start_time, unit="ms", tz="UTC"),
            "end_time": pd.Timestamp(run.end_time, unit="ms", tz="UTC")
            if run.end_time is not None
            else pd.NaT,
        }
        row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.params.items()})
        row.update({f"tags.{k}": v for k, v in run.tags.items()})
        row.setdefault("tags.mlflow.runName", run.name)
        rows.append(row)
    fixed = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    frame = pd.DataFrame(rows, columns=None if rows else fixed)
    rest = sorted(
        (c for c in frame.columns if c not in fixed),
        key=lambda c: (("metrics.", "params.", "tags.").index(c.split(".", 1)[0] + "."), c),
    )
    return frame[fixed + rest]


def get_experiment(id_or_name: str) -> Experiment:
    """Fetch an experiment by id or name."""
    return _tracking().get_experiment(id_or_name)


def list_experiments() -> list[Experiment]:
    """Every experiment, oldest first."""
    return _tracking().list_experiments()


def download_artifact(run_id: str, name: str, dest: str | Path) -> Path:
    """Copy a run's artifact to ``dest`` (a file or a folder), verified against its hash."""
    return _tracking().download_artifact(run_id, name, dest)
