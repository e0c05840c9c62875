"""Production and champion move through approvals on every backend: by hand they are an
admin's break-glass with a reason, audited. (A local store used to promote with neither.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from shipyard.bootstrap import Backend, rest_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.core.settings import Settings
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


@contextmanager
def _as(backend: Backend, name: str, role: Role) -> Iterator[Backend]:
    """The same store as ``name``: in process, the acting user; through a server, a backend
    with that user's token (the server takes the role from it)."""
    if backend.kind != "rest":
        with acting_as(name, role):
            yield backend
        return
    identity = backend.governance.identity
    identity.create_user(name, role.value)
    token = identity.create_token(name, "contract")[1]
    other = rest_backend(Settings(uri=backend.uri, token=token))
    try:
        yield other
    finally:
        other.close()


def test_callers_below_admin_are_refused_on_every_backend(backend: Backend) -> None:
    version = _version(backend)
    with _as(backend, "bob", Role.APPROVER) as bob:
        bob.registry.transition("credit", version, "approved")
        with pytest.raises(PermissionDeniedError, match="bob has role approver"):
            bob.registry.transition("credit", version, "production", reason="I insist")
        with pytest.raises(PermissionDeniedError, match="bob has role approver"):
            bob.registry.set_alias("credit", "champion", version, reason="I insist")
    with (
        _as(backend, "vic", Role.VIEWER) as vic,
        pytest.raises(PermissionDeniedError, match="needs approver"),
    ):
        vic.registry.set_alias("credit", "challenger", version)
    assert backend.registry.get_version("credit", version).state.value == "approved"
    assert backend.registry.get_model("credit").aliases == {}
