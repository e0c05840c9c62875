"""Quality gates on a real store: evaluate, store, refuse bad policies and data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.gates.render import to_html, to_junit

FAIR = ["x0", "x1", "x2", "segment_code"]
BIASED = [*FAIR, "group_code"]


def make_data(rows: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Synthetic credit-like data; group B gets more positives only through ``group_code``."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], rows, p=[0.7, 0.3])
    x = rng.normal(size=(rows, 3))
    x[:, 0] += shift
    segment = rng.integers(0, 4, rows)
    logit = -2.0 + 1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.3 * segment
    return pd.DataFrame(
        {
            "x0": x[:, 0],
            "x1": x[:, 1],
            "x2": x[:, 2],
            "segment_code": segment,
            "group": group,
            "group_code": (group == "B").astype(int),
            "label": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


POLICY = {
    "label": "label",
    "checks": [
        {"metric": "roc_auc", "min": 0.7},
        {"champion_challenger": {"metric": "roc_auc", "max_drop": 0.02, "resamples": 300}},
        {
            "fairness": {
                "sensitive": "group",
                "reference": "A",
                "favourable": 0,
                "adverse_impact_ratio_min": 0.8,
                "equalized_odds_difference_max": 0.2,
            }
        },
        {"data_validation": {"schema": "training"}},
        {"drift": {"reference": "training", "method": "psi", "max": 0.2}},
    ],
}


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """Gates on an embedded store, on PostgreSQL, and through a live server (report stored
    there): the Gates contract gives the same reports on each."""
    if request.param == "sqlite":
        shipyard.set_uri(str(tmp_path / "store"))
    elif request.param == "postgres":
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
        shipyard.set_uri(request.getfixturevalue("postgres_uri"))
    else:
        server = request.getfixturevalue("token_server")  # token auth, as its admin
        request.getfixturevalue("monkeypatch").setenv("SHIPYARD_TOKEN", server.token)
        shipyard.set_uri(server.url)
    yield
    shipyard.set_uri(None)


@pytest.fixture
def registered(store: None, seed: int) -> pd.DataFrame:
    """v1 fair (champion), v2 biased: trained on labels that punish group B."""
    train = make_data(4000, seed)
    fair = LogisticRegression().fit(train[FAIR], train["label"])
    shipyard.register_model("credit", fair, train[FAIR][:5], training_data=train[FAIR])
    shipyard.set_alias("credit", "champion", 1, reason="test setup")
    unfair_train = train.copy()
    flip = (unfair_train["group"] == "B") & (np.random.default_rng(seed + 1000).random(4000) < 0.4)
    unfair_train.loc[flip, "label"] = 1
    biased = LogisticRegression().fit(unfair_train[BIASED], unfair_train["label"])
    shipyard.register_model("credit", biased, train[BIASED][:5], training_data=train[BIASED])
    return make_data(3000, seed + 1)


def test_fair_champion_passes_and_biased_candidate_fails(registered: pd.DataFrame) -> None:
    evaluation = registered
    first = shipyard.check_gates("credit", 1, POLICY, evaluation)
    assert first.passed, [c.message for c in first.failed_checks]
    statuses = {c.name: c.status for c in first.checks}
    # v1 is the champion: nothing to compare with, and the report says so.
    assert statuses["champion_challenger:roc_auc"] == "skipped"

    second = shipyard.check_gates("credit", 2, POLICY, evaluation)
    assert not second.passed
    failed = {c.name: c for c in second.failed_checks}
    # Trained on labels that punish group B: unfair, and worse than the champion.
    assert set(failed) == {"fairness:group", "champion_challenger:roc_auc"}
    fairness = failed["fairness:group"]
    groups = {g["group"]: g for g in fairness.details["groups"]}
    assert groups["A"]["adverse_impact_ratio"] == pytest.approx(1.0)
    assert groups["B"]["adverse_impact_ratio"] < 0.8
    assert "adverse impact ratio of B" in fairness.message
    # Both readings of parity are reported: the AIR and fairlearn's min/max ratio.
    assert 0 < fairness.details["demographic_parity_ratio"] < 1
    worse = failed["champion_challenger:roc_auc"]
    assert worse.details["champion_version"] == 1
    low, high = worse.details["interval"]
    assert low <= worse.details["difference"] <= high and low < -0.02

    # A retrained fair model is statistically no worse than the champion: it passes.
    train = make_data(4000, 99)
    retrained = LogisticRegression(C=0.5).fit(train[FAIR], train["label"])
    shipyard.register_model("credit", retrained, train[FAIR][:5], training_data=train[FAIR])
    third = shipyard.check_gates("credit", 3, POLICY, evaluation)
    assert third.passed, [c.message for c in third.failed_checks]
    cmp = {c.name: c for c in third.checks}["champion_challenger:roc_auc"]
    assert cmp.status == "passed" and abs(cmp.details["difference"]) < 0.02

    stored = shipyard.model_registry()
    assert stored.get_version("credit", 2).version == 2
    backend_reports = shipyard.sdk.context.current().get_backend().gates.reports("credit")
    assert [r.id for r in backend_reports] == [third.id, second.id, first.id]
    assert backend_reports[1].to_dict() == second.to_dict()


def test_reports_render_to_junit_and_html(registered: pd.DataFrame) -> None:
    report = shipyard.check_gates("credit", 2, POLICY, registered)
    suite = ET.fromstring(to_junit(report))
    assert suite.get("tests") == "5" and suite.get("failures") == "2"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["champion_challenger:roc_auc", "fairness:group"]
    page = to_html(report)
    assert "Fairness by group" in page and "FAILED" in page and "<script" not in page
    json.dumps(report.to_dict(), allow_nan=False)  # strict JSON: no NaN anywhere


def test_bad_data_and_policies_are_clear_errors(registered: pd.DataFrame) -> None:
    evaluation = registered
    with pytest.raises(InvalidInputError, match="no sensitive column group"):
        shipyard.check_gates("credit", 1, POLICY, evaluation.drop(columns=["group"]))
    with pytest.raises(InvalidInputError, match="no label column"):
        shipyard.check_gates("credit", 1, POLICY, evaluation.drop(columns=["label"]))
    with pytest.raises(InvalidInputError, match="lacks model input column"):
        shipyard.check_gates("credit", 1, POLICY, evaluation.drop(columns=["x0"]))
    with pytest.raises(InvalidInputError, match="unknown check 'accuracy_gate'"):
        shipyard.check_gates(
            "credit", 1, {"label": "label", "checks": [{"accuracy_gate": {}}]}, evaluation
        )
    with pytest.raises(InvalidInputError, match="unknown metric 'auc'"):
        shipyard.check_gates(
            "credit", 1, {"label": "label", "checks": [{"metric": "auc", "min": 1}]}, evaluation
        )
    fairness = {"sensitive": "group", "reference": "Z", "adverse_impact_ratio_min": 0.8}
    bad = {**POLICY, "checks": [{"fairness": fairness}]}
    with pytest.raises(InvalidInputError, match="reference group 'Z' does not occur"):
        shipyard.check_gates("credit", 1, bad, evaluation)
    with pytest.raises(NotFoundError):
        shipyard.check_gates("credit", 9, POLICY, evaluation)
    assert shipyard.sdk.context.current().get_backend().gates.reports("credit") == []


def test_data_validation_and_drift_catch_broken_inputs(registered: pd.DataFrame) -> None:
    broken = registered.copy()
    broken.loc[: len(broken) // 3, "x2"] = 1e6  # far outside anything seen in training
    broken["segment_code"] = broken["segment_code"].where(broken.index % 7 != 0, 99)
    policy = {"label": "label", "checks": [{"data_validation": {}}, {"drift": {"max": 0.2}}]}
    report = shipyard.check_gates("credit", 1, policy, broken)
    checks = {c.kind: c for c in report.checks}
    validation = checks["data_validation"]
    assert validation.status == "failed"
    broken_columns = {f["column"] for f in validation.details["failures"]}
    assert {"x2", "segment_code"} <= broken_columns
    drift = checks["drift"]
    assert drift.status == "failed" and "x2" in drift.details["drifted_columns"]
    assert "x1" not in drift.details["drifted_columns"]


def test_without_training_data_reference_checks_say_how_to_fix(store: None, seed: int) -> None:
    data = make_data(500, seed)
    model = LogisticRegression().fit(data[FAIR], data["label"])
    shipyard.register_model("plain", model, data[FAIR][:5])
    policy = {"label": "label", "checks": [{"drift": {}}]}
    with pytest.raises(InvalidInputError, match=r"training_data=.*--reference"):
        shipyard.check_gates("plain", 1, policy, data)
    report = shipyard.check_gates("plain", 1, policy, data, reference=data[FAIR])
    assert report.passed
