"""The registry API of the SDK: ``log_model``, ``register_model``, ``load_model``, aliases."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.core.actor import current_actor
from shipyard.core.errors import InvalidInputError
from shipyard.gates.service import TRAINING_DATA
from shipyard.pipelines.profile import profile_frame
from shipyard.registry.models import ModelVersion, RegisteredModel, parse_model_uri
from shipyard.registry.package import LoadedModel
from shipyard.registry.ports import ModelRegistry
from shipyard.registry.signature import Signature
from shipyard.sdk import context, runs


def model_registry() -> ModelRegistry:
    """The registry service of the current store (the full API, like MLflow's client)."""
    return context.current().get_backend().registry


def actor_name() -> str:
    """Who acts: the request's user on a server, else ``SHIPYARD_USER`` or the OS user."""
    context.current().get_backend()  # building it names the process's actor
    return current_actor()


def log_model(
    model: Any,
    artifact_path: str = "model",
    *,
    input_example: Any,
    signature: Signature | None = None,
    convert_onnx: bool = True,
) -> str:
    """Store ``model`` as a package in the active run; return its ``runs:/`` URI."""
    run = runs.active_run()
    if run is None:
        raise InvalidInputError("log_model needs an active run: call it inside start_run()")
    run.flush()
    model_registry().log_model(
        run.id,
        model,
        artifact_path=artifact_path,
        input_example=input_example,
        signature=signature,
        convert_onnx=convert_onnx,
    )
    return f"runs:/{run.id}/{artifact_path}"


def register_model(
    name: str,
    model_or_uri: Any,
    input_example: Any = None,
    *,
    run_id: str | None = None,
    description: str | None = None,
    tags: Mapping[str, object] | None = None,
    training_data: Any = None,
    signature: Signature | None = None,
    convert_onnx: bool = True,
) -> ModelVersion:
    """Register a model object, or a package already logged (``runs:/RUN/model``).

    A model object is logged into ``run_id``, else the active run, else a new run named
    ``register-<name>``; ``input_example`` (a few rows) gives the signature. Pass
    ``training_data`` (a DataFrame) to put its profile in the model card.
    """
    svc = model_registry()
    profile = profile_frame(training_data) if training_data is not None else None
    if isinstance(model_or_uri, str):
        uri = parse_model_uri(model_or_uri)
        if uri.scheme != "runs":
            raise InvalidInputError(
                f"register a runs:/ URI or a model object; {model_or_uri} is already registered"
            )
        if training_data is not None:
            _log_training_data(svc, uri.run_id, training_data)
        return svc.register(
            name,
            run_id=uri.run_id,
            artifact_path=uri.path,
            description=description,
            tags=tags,
            created_by=actor_name(),
            data_profile=profile,
        )
    active = runs.active_run()
    target = run_id or (active.id if active is not None else None)
    if target is None:
        with runs.start_run(run_name=f"register-{name}"[:250]) as run:
            svc.log_model(
                run.id,
                model_or_uri,
                input_example=input_example,
                signature=signature,
                convert_onnx=convert_onnx,
            )
            if training_data is not None:
                _log_training_data(svc, run.id, training_data)
        target = run.id
    else:
        if active is not None and active.id == target:
            active.flush()
        svc.log_model(
            target,
            model_or_uri,
            input_example=input_example,
            signature=signature,
            convert_onnx=convert_onnx,
        )
        if training_data is not None:
            _log_training_data(svc, target, training_data)
    return svc.register(
        name,
        run_id=target,
        description=description,
        tags=tags,
        created_by=actor_name(),
        data_profile=profile,
    )


def load_model(uri: str, *, trusted: bool = False) -> LoadedModel:
    """Load ``models:/name@alias``, ``models:/name/3`` or ``runs:/RUN_ID/model``.

    Every file is checked against the hash recorded when it was stored; a pickled model
    loads only with ``trusted=True``.
    """
    return model_registry().load(uri, trusted=trusted)[0]


def set_alias(
    name: str, alias: str, version: int | str, *, reason: str | None = None
) -> ModelVersion:
    """Point ``alias`` (``challenger``, ``shadow``, ...) at a version.

    ``champion`` moves through approvals and rollback; by hand it is an admin's break-glass
    and needs a ``reason`` (audited).
    """
    return model_registry().set_alias(name, alias, version, reason=reason)


def delete_alias(name: str, alias: str, *, reason: str | None = None) -> None:
    """Remove an alias from a model (``champion``: break-glass, with a ``reason``)."""
    model_registry().delete_alias(name, alias, reason=reason)


def get_model_version(name: str, version: int | str) -> ModelVersion:
    """One version of a registered model."""
    return model_registry().get_version(name, version)


def list_models() -> list[RegisteredModel]:
    """Every registered model."""
    return model_registry().list_models()


#: Training data kept with a version for gates (schema and drift); larger sets are sampled.
MAX_TRAINING_ROWS = 1_000_000


def _log_training_data(svc: ModelRegistry, run_id: str, frame: Any) -> None:
    """Keep the training data (Parquet) in the run, where gate checks find it."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError("training_data must be a pandas DataFrame")
    if len(frame) > MAX_TRAINING_ROWS:
        frame = frame.sample(MAX_TRAINING_ROWS, random_state=0)
    with tempfile.TemporaryDirectory(prefix="shipyard-train-") as tmp:
        path = Path(tmp) / "training.parquet"
        frame.to_parquet(path, index=False)
        svc.tracking.log_artifact(run_id, path, TRAINING_DATA)
