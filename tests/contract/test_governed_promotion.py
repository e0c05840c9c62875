"""Production and champion move through approvals on every backend: by hand they are an
admin's break-glass with a reason, audited. (A local store used to promote with neither.)"""

from __future__ import annotations

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from shipyard.bootstrap import Backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.governance.models import Role


def _version(backend: Backend) -> int:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X.iloc[:200], y.iloc[:200])
    run = backend.tracking.create_run("credit-training")
    backend.registry.log_model(run.id, model, input_example=X.iloc[:5], convert_onnx=False)
    return backend.registry.register("credit", run_id=run.id).version


def test_production_and_champion_by_hand_need_a_reason_and_are_audited(backend: Backend) -> None:
    registry = backend.registry
    version = _version(backend)
    registry.transition("credit", version, "approved")
    with pytest.raises(InvalidInputError, match="break-glass: give a reason"):
        registry.transition("credit", version, "production")
    with pytest.raises(InvalidInputError, match="break-glass: give a reason"):
        registry.set_alias("credit", "champion", version)
    assert registry.get_version("credit", version).state.value == "approved"
    assert registry.get_model("credit").aliases == {}
    registry.transition("credit", version, "production", reason="INC-7: approvers away")
    registry.set_alias("credit", "champion", version, reason="INC-7: approvers away")
    registry.set_alias("credit", "challenger", version)  # other aliases need no reason
    actions = [e.action for e in backend.governance.audit.events(obj="models:/credit")]
    assert actions.count("version.break_glass") == 1
    assert actions.count("alias.break_glass") == 1


def test_in_process_callers_below_admin_are_refused_by_the_service(backend: Backend) -> None:
    if backend.kind == "rest":
        pytest.skip("through a server the caller's role comes from its token (test_server_auth)")
    registry = backend.registry
    version = _version(backend)
    with acting_as("bob", Role.APPROVER):
        registry.transition("credit", version, "approved")
        with pytest.raises(PermissionDeniedError, match="bob has role approver"):
            registry.transition("credit", version, "production", reason="I insist")
        with pytest.raises(PermissionDeniedError, match="bob has role approver"):
            registry.set_alias("credit", "champion", version, reason="I insist")
    with (
        acting_as("vic", Role.VIEWER),
        pytest.raises(PermissionDeniedError, match="needs approver"),
    ):
        registry.set_alias("credit", "challenger", version)
