"""MLflow's REST shapes for Shipyard's records, and the few id mappings between the two.

MLflow's entities are protobuf messages sent as JSON: lists of ``{key, value}`` for tags and
params, int64 milliseconds for times, version numbers as strings. The client ignores fields
it does not know, so these dicts carry exactly the fields of MLflow 3's messages.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.registry.models import ModelVersion, RegisteredModel, VersionState
from shipyard.tracking.models import Experiment, Run

#: The experiment MLflow's client uses when none is set.
DEFAULT_EXPERIMENT_ID = "0"
#: Where runs' artifacts are served (MLflow's ``--serve-artifacts`` proxy).
ARTIFACTS_SCHEME = "mlflow-artifacts:"
#: MLflow's run tags that Shipyard also keeps as its own facts.
USER = "mlflow.user"
RUN_NAME = "mlflow.runName"
PARENT_RUN = "mlflow.parentRunId"
GIT_COMMIT = "mlflow.source.git.commit"
SOURCE_NAME = "mlflow.source.name"
#: Logged models (MLflow 3) live in their run: metadata here, files under their folder.
LOGGED_MODELS_DIR = ".mlflow/logged-models"
LOGGED_MODELS_TAG = "shipyard.mlflow.logged_models"
#: The datasets a run read (MLflow's ``log_inputs``), kept as an artifact of the run.
INPUTS_FILE = ".mlflow/inputs.json"

_MODEL_ID = re.compile(r"^m-([0-9a-hjkmnp-tv-z]{26})-([0-9a-f]{8})$")


def kv(items: Mapping[str, object]) -> list[dict[str, str]]:
    """MLflow's list of ``{key, value}`` pairs."""
    return [{"key": k, "value": str(v)} for k, v in items.items()]


def from_kv(items: list[Any] | None) -> dict[str, str]:
    """A dict from MLflow's list of ``{key, value}`` pairs (the last one wins, as in MLflow)."""
    out: dict[str, str] = {}
    for item in items or []:
        if not isinstance(item, Mapping) or "key" not in item:
            raise InvalidInputError(f"expected {{key, value}} pairs; got {str(item)[:80]!r}")
        out[str(item["key"])] = "" if item.get("value") is None else str(item["value"])
    return out


def experiment(exp: Experiment) -> dict[str, Any]:
    """An MLflow ``Experiment``."""
    return {
        "experiment_id": exp.id,
        "name": exp.name,
        "artifact_location": f"{ARTIFACTS_SCHEME}/{exp.id}",
        "lifecycle_stage": "active",
        "creation_time": exp.created_at,
        "last_update_time": exp.created_at,
        "tags": kv(exp.tags),
    }


def artifact_uri(run: Run) -> str:
    """Where MLflow's client reads and writes a run's artifacts."""
    return f"{ARTIFACTS_SCHEME}/{run.experiment_id}/{run.id}/artifacts"


def run_info(run: Run) -> dict[str, Any]:
    """An MLflow ``RunInfo``."""
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.tags.get(USER) or run.tags.get("shipyard.user", ""),
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": artifact_uri(run),
        "lifecycle_stage": "active",
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run(record: Run, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An MLflow ``Run``: info, latest metrics, params and tags."""
    tags = {RUN_NAME: record.name, **record.tags}
    if record.parent_id:
        tags.setdefault(PARENT_RUN, record.parent_id)
    body: dict[str, Any] = {
        "info": run_info(record),
        "data": {
            "metrics": [
                {"key": k, "value": _number(v), "timestamp": record.start_time, "step": 0}
                for k, v in record.metrics.items()
            ],
            "params": kv(record.params),
            "tags": kv(tags),
        },
        "inputs": {},
    }
    if outputs:
        body["outputs"] = {"model_outputs": outputs}
    return body


def _number(value: float) -> float | str:
    """JSON has no NaN or infinities: MLflow sends them as strings."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def metric(key: str, value: float, step: int, timestamp: int) -> dict[str, Any]:
    """An MLflow ``Metric`` point."""
    return {"key": key, "value": _number(value), "step": step, "timestamp": timestamp}


# model registry ---------------------------------------------------------------------------

#: MLflow's deprecated stages, read from Shipyard's lifecycle (aliases decide serving).
STAGE_OF = {
    VersionState.CANDIDATE: "None",
    VersionState.APPROVED: "Staging",
    VersionState.PRODUCTION: "Production",
    VersionState.RETIRED: "Archived",
}


def model_version(mv: ModelVersion, experiment_id: str) -> dict[str, Any]:
    """An MLflow ``ModelVersion`` (its source is under its run's experiment)."""
    source = f"{ARTIFACTS_SCHEME}/{experiment_id}/{mv.run_id}/artifacts/{mv.artifact_path}"
    body: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.created_at,
        "last_updated_timestamp": mv.updated_at,
        "user_id": mv.created_by,
        "current_stage": STAGE_OF[mv.state],
        "description": mv.description,
        "source": source,
        "run_id": mv.run_id,
        "status": "READY",
        "tags": kv(mv.tags),
        "aliases": list(mv.aliases),
    }
    if model_id := mv.tags.get("mlflow.model_id"):
        body["model_id"] = model_id
    return body


def registered_model(
    model: RegisteredModel, latest: list[tuple[ModelVersion, str]]
) -> dict[str, Any]:
    """An MLflow ``RegisteredModel`` with its latest version per stage."""
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description,
        "latest_versions": [model_version(v, e) for v, e in latest],
        "tags": kv(model.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(model.aliases.items())],
    }


def latest_per_stage(versions: list[ModelVersion]) -> list[ModelVersion]:
    """MLflow's ``latest_versions``: the newest version of each stage."""
    seen: dict[str, ModelVersion] = {}
    for mv in sorted(versions, key=lambda v: v.version):
        seen[STAGE_OF[mv.state]] = mv
    return sorted(seen.values(), key=lambda v: v.version)


# logged models ----------------------------------------------------------------------------


def new_model_id(run_id: str) -> str:
    """A logged model's id, naming the run that holds it: ``m-<run id body>-<8 hex>``."""
    return f"m-{run_id.removeprefix('run_')}-{secrets.token_hex(4)}"


def run_of_model(model_id: str) -> str:
    """The run that holds a logged model.

    Raises:
        InvalidInputError: the id is not one this server made.
    """
    match = _MODEL_ID.match(model_id or "")
    if match is None:
        raise InvalidInputError(f"{model_id[:80]!r} is not a logged model id of this server")
    return f"run_{match.group(1)}"


def logged_model(doc: Mapping[str, Any]) -> dict[str, Any]:
    """An MLflow ``LoggedModel`` from the document stored beside its run."""
    info = {
        k: doc[k]
        for k in (
            "model_id",
            "experiment_id",
            "name",
            "creation_timestamp_ms",
            "last_updated_timestamp_ms",
            "artifact_uri",
            "status",
            "model_type",
            "source_run_id",
            "status_message",
        )
        if doc.get(k) is not None
    }
    # MLflow's creator_id is a numeric (Databricks) user id: the creator travels as a tag.
    info["tags"] = kv({**doc.get("tags", {}), USER: doc.get("creator_id", "")})
    return {
        "info": info,
        "data": {"params": kv(doc.get("params", {})), "metrics": doc.get("metrics", [])},
    }
