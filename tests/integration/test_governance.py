"""Approvals with separation of duties, and the audit chain, on real stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.bootstrap import Backend, local_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from shipyard.core.settings import Settings
from shipyard.governance.models import Role
from tests.integration.test_gates import FAIR, make_data

POLICY = {"label": "label", "checks": [{"metric": "roc_auc", "min": 0.6}]}
FAILING = {"label": "label", "checks": [{"metric": "roc_auc", "min": 0.999}]}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """A store where alice (member) trained and registered credit v1 and v2."""
    if request.param == "sqlite":
        settings = Settings(uri=str(tmp_path / "store"))
    else:
        settings = Settings(
            uri=request.getfixturevalue("postgres_uri"), artifacts=str(tmp_path / "blobs")
        )
    built = local_backend(settings)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", settings.artifact_root)  # the SDK's settings read it
    shipyard.set_uri(settings.store_uri)
    data = make_data(1500, 3)
    with acting_as("alice"):
        for c in (1.0, 0.5):
            model = LogisticRegression(C=c).fit(data[FAIR], data["label"])
            shipyard.register_model("credit", model, data[FAIR][:5], training_data=data[FAIR])
    yield built
    shipyard.set_uri(None)
    built.close()


def _gate(backend: Backend, version: int, policy: dict[str, object] = POLICY) -> None:
    with acting_as("ci"):
        backend.gates.evaluate("credit", version, policy, make_data(800, 4))


def test_promotion_needs_a_passing_report_for_that_version(backend: Backend) -> None:
    approvals = backend.governance.approvals
    with acting_as("alice"), pytest.raises(NotFoundError, match="has no gate report"):
        approvals.request("credit", 1, note="first")
    _gate(backend, 2)  # a report for another version does not count
    with acting_as("alice"), pytest.raises(NotFoundError, match="has no gate report"):
        approvals.request("credit", 1)
    _gate(backend, 1, FAILING)
    with acting_as("alice"), pytest.raises(PermissionDeniedError, match="failed: metric:roc_auc"):
        approvals.request("credit", 1)
    _gate(backend, 1)
    with acting_as("alice"):
        request = approvals.request("credit", 1, note="ready")
    assert request.status == "open" and request.gate_report is not None
    with acting_as("alice"), pytest.raises(ConflictError, match="already has an open"):
        approvals.request("credit", 1)
    # A newer failing report blocks the approval even with the request open.
    _gate(backend, 1, FAILING)
    with acting_as("bob", Role.APPROVER), pytest.raises(PermissionDeniedError, match="failed"):
        approvals.approve("credit", 1)


def test_separation_of_duties_and_promotion(backend: Backend) -> None:
    approvals = backend.governance.approvals
    registry = backend.registry
    for version in (1, 2):
        _gate(backend, version)
    with acting_as("alice"):
        approvals.request("credit", 1)
    with (
        acting_as("alice", Role.ADMIN),
        pytest.raises(PermissionDeniedError, match=r"registered .* cannot approve"),
    ):
        approvals.approve("credit", 1)  # even an admin cannot approve their own
    with (
        acting_as("mallory", Role.MEMBER),
        pytest.raises(PermissionDeniedError, match="needs the approver role"),
    ):
        approvals.approve("credit", 1)
    with acting_as("bob", Role.APPROVER):
        done = approvals.approve("credit", 1, note="looks good")
    assert done.status == "approved"
    assert registry.get_version("credit", 1).state.value == "production"
    assert registry.get_model("credit").aliases["champion"] == 1

    # Version 2, trained by carol, registered by alice: neither may approve it.
    with acting_as("alice"):
        approvals.request("credit", 2)
    with acting_as("bob", Role.APPROVER):
        final = approvals.approve("credit", 2)
    assert final.status == "approved"
    assert registry.get_model("credit").aliases["champion"] == 2
    assert registry.get_version("credit", 1).state.value == "retired"

    with acting_as("bob", Role.APPROVER):
        back = approvals.rollback("credit", note="incident 42")
    assert back.version == 1 and back.state.value == "production"
    assert registry.get_model("credit").aliases["champion"] == 1
    assert registry.get_version("credit", 2).state.value == "retired"
    actions = [e.action for e in backend.governance.audit.events(obj="models:/credit")]
    for expected in (
        "model.registered",
        "gate.evaluated",
        "promotion.requested",
        "promotion.approved",
        "model.promoted",
        "alias.set",
        "model.rolled_back",
    ):
        assert expected in actions
    assert backend.governance.audit.verify().ok


def test_the_trainer_cannot_approve_either(backend: Backend) -> None:
    data = make_data(1500, 5)
    with acting_as("carol"), shipyard.start_run() as run:
        model = LogisticRegression().fit(data[FAIR], data["label"])
        uri = shipyard.log_model(model, input_example=data[FAIR][:5])
    assert run.id in uri
    with acting_as("alice"):
        mv = backend.registry.register("credit", run_id=run.id, created_by="alice")
    _gate(backend, mv.version)
    with acting_as("alice"):
        backend.governance.approvals.request("credit", mv.version)
    with (
        acting_as("carol", Role.APPROVER),
        pytest.raises(PermissionDeniedError, match=r"trained .* cannot approve"),
    ):
        backend.governance.approvals.approve("credit", mv.version)


def test_two_approvals_and_concurrent_approvers_promote_once(backend: Backend) -> None:
    registry = backend.registry
    with acting_as("admin"):
        registry.set_governance(
            "credit",
            approvals_required=2,
            use_case="credit_scoring",
            risk_tier="high",
            owner="risk-team",
        )
    _gate(backend, 1)
    with acting_as("alice"):
        backend.governance.approvals.request("credit", 1)
    with acting_as("bob", Role.APPROVER):
        first = backend.governance.approvals.approve("credit", 1)
    assert first.status == "open"  # one of two
    errors: list[Exception] = []

    def approve(name: str) -> None:
        try:
            with acting_as(name, Role.APPROVER):
                backend.governance.approvals.approve("credit", 1)
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(n,)) for n in ("carol", "dave", "erin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(e, NotFoundError) for e in errors), errors  # closed already
    promoted = [e for e in backend.governance.audit.events() if e.action == "model.promoted"]
    assert len(promoted) == 1
    assert registry.get_version("credit", 1).state.value == "production"
    model = registry.get_model("credit")
    assert (model.use_case, model.risk_tier, model.approvals_required) == (
        "credit_scoring",
        "high",
        2,
    )


def test_an_approval_that_promotes_is_all_or_nothing(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approval, the state moves, the champion alias and their events are one unit: a
    crash in the middle of a promotion leaves the version as it was, request still open."""
    from tests.integration.test_audit_atomicity import CrashError, crash_on_append

    _gate(backend, 1)
    with acting_as("alice"):
        backend.governance.approvals.request("credit", 1)
    before = len(backend.governance.audit.events())
    crash_on_append(backend.governance.audit.store, monkeypatch, at=3)
    with acting_as("bob", Role.APPROVER), pytest.raises(CrashError):
        backend.governance.approvals.approve("credit", 1)
    monkeypatch.undo()
    assert backend.registry.get_version("credit", 1).state.value == "candidate"
    assert "champion" not in backend.registry.get_model("credit").aliases
    request = backend.governance.approvals.requests("credit", 1)[0]
    assert request.status == "open" and not request.approvals
    assert len(backend.governance.audit.events()) == before
    with acting_as(
        "bob", Role.APPROVER
    ):  # nothing half-done stands in the way of the real approval
        done = backend.governance.approvals.approve("credit", 1)
    assert done.status == "approved"
    assert backend.registry.get_model("credit").aliases["champion"] == 1
    assert backend.governance.audit.verify().ok


def _audit_engine(backend: Backend) -> sa.Engine:
    """The database as its owner (the attacker here) sees it: append-only triggers dropped."""
    from tests.security.test_audit_tampering import _owner

    return _owner(backend)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("UPDATE audit_events SET payload = '{\"version\": 99}' WHERE seq = 3", "edited"),
        ("DELETE FROM audit_events WHERE seq = 3", "missing"),
        ("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2", "edited"),
        (
            "UPDATE audit_events SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 END "
            "WHERE seq IN (2, 3)",
            "changed, removed or moved",
        ),
    ],
)
def test_audit_chain_detects_tampering(backend: Backend, tamper: str, reason: str) -> None:
    audit = backend.governance.audit
    check = audit.verify()
    assert check.ok and check.events >= 4
    engine = _audit_engine(backend)
    with engine.begin() as conn:
        if "CASE" in tamper:  # swap two rows through a free number (primary key)
            conn.execute(sa.text("UPDATE audit_events SET seq = -1 WHERE seq = 2"))
            conn.execute(sa.text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
            conn.execute(sa.text("UPDATE audit_events SET seq = 3 WHERE seq = -1"))
        else:
            conn.execute(sa.text(tamper))
    engine.dispose()
    broken = audit.verify()
    assert not broken.ok and broken.broken_at in (2, 3, 4)
    assert reason in broken.reason


def test_inserted_event_is_detected(backend: Backend) -> None:
    audit = backend.governance.audit
    first = audit.events()[0]
    engine = _audit_engine(backend)
    with engine.begin() as conn:
        count = conn.execute(sa.text("SELECT max(seq) FROM audit_events")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (seq, id, time, actor, action, object, payload, "
                "prev_hash, hash) VALUES (:s, 'evt_forged', 1, 'mallory', 'alias.set', "
                "'models:/credit@champion', '{}', :p, :h)"
            ),
            {"s": int(count) + 1, "p": first.hash, "h": first.hash},
        )
    engine.dispose()
    broken = audit.verify()
    assert not broken.ok and broken.broken_at == int(count) + 1
