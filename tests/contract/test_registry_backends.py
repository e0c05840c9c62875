"""The registry's model-level operations give the same answers on every backend."""

from __future__ import annotations

import pytest

from shipyard.bootstrap import Backend
from shipyard.core.errors import ConflictError, InvalidInputError


def test_create_model_then_conflict_and_bad_names(backend: Backend) -> None:
    created = backend.registry.create_model(
        "credit-risk", description="PD model", tags={"team": "risk"}
    )
    assert (created.name, created.description, created.tags) == (
        "credit-risk",
        "PD model",
        {"team": "risk"},
    )
    assert created.latest_version is None
    assert backend.registry.get_model("credit-risk").tags == {"team": "risk"}
    with pytest.raises(ConflictError, match="already exists"):
        backend.registry.create_model("credit-risk")
    with pytest.raises(InvalidInputError):
        backend.registry.create_model("")
    assert [m.name for m in backend.registry.list_models()] == ["credit-risk"]


def test_a_version_lives_the_same_on_every_backend(backend: Backend) -> None:
    """Register, resolve, load, tag, describe, edit the card and delete: the local service
    and the REST adapter (composed from the same package code) answer alike."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from shipyard.core.errors import NotFoundError, StateTransitionError

    registry = backend.registry
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X.iloc[:200], y.iloc[:200])
    run = backend.tracking.create_run("fraud-training")
    info = registry.log_model(run.id, model, input_example=X.iloc[:5], convert_onnx=False)
    first = registry.register("fraud", run_id=run.id, description="v1", tags={"team": "risk"})
    second = registry.register("fraud", run_id=run.id)
    assert (first.version, second.version) == (1, 2)
    assert first.files == info.files and first.flavors == ["sklearn"]
    assert (first.state.value, first.tags, first.description) == (
        "candidate",
        {"team": "risk"},
        "v1",
    )
    assert first.card["model_details"]["name"] == "fraud"
    assert [v.version for v in registry.list_versions("fraud")] == [2, 1]

    registry.set_alias("fraud", "challenger", 1)
    assert registry.resolve("models:/fraud@challenger").version == 1
    assert registry.resolve("models:/fraud/latest").version == 2
    assert registry.resolve("models:/fraud/1").version == 1
    with pytest.raises(NotFoundError, match="no alias 'shadow' \\(aliases: challenger\\)"):
        registry.resolve("models:/fraud@shadow")
    loaded, version = registry.load("models:/fraud@challenger")
    assert version is not None and version.version == 1
    np.testing.assert_array_equal(loaded.predict(X.iloc[200:260]), model.predict(X.iloc[200:260]))

    registry.set_tag("fraud", 2, "validated", "yes")
    registry.set_tag("fraud", None, "domain", "cards")
    assert registry.get_version("fraud", 2).tags == {"validated": "yes"}
    assert registry.get_model("fraud").tags["domain"] == "cards"
    assert registry.update("fraud", 2, description="retrained").description == "retrained"
    edited = registry.edit_card("fraud", 2, {"considerations.limitations": ["not for SMEs"]})
    assert edited.card["considerations"]["limitations"] == ["not for SMEs"]
    with pytest.raises(StateTransitionError, match="a candidate version cannot become production"):
        registry.transition("fraud", 2, "production", reason="INC-1")

    with pytest.raises(ConflictError, match="holds aliases challenger"):
        registry.delete_version("fraud", 1)
    registry.delete_version("fraud", 1, force=True)
    with pytest.raises(NotFoundError, match="was deleted"):
        registry.get_version("fraud", 1)
    assert [v.version for v in registry.list_versions("fraud")] == [2]
    assert registry.get_model("fraud").aliases == {}
