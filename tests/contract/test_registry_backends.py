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
