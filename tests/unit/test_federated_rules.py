"""Federated job rules that need no Flower: job validation, the pooled scaler, local
training, the card's federated section and the gate's privacy and silos checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.federated import trainer
from shipyard.federated.config import check_silo_name, load_config
from shipyard.gates.checks import GateContext, Outputs, run_check
from shipyard.gates.policy import parse_policy
from shipyard.registry.card import federated_summary, new_card, to_markdown


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({}, "label: Field required"),
        ({"label": "y", "strategy": "fedprox"}, "fedprox needs proximal_mu > 0"),
        ({"label": "y", "proximal_mu": 0.1}, "proximal_mu applies to fedprox"),
        ({"label": "y", "rounds": 0}, "rounds: Input should be greater than or equal to 1"),
        ({"label": "y", "dp": {"noise_multiplier": 1.0}}, "dp.clipping_norm: Field required"),
        (
            {
                "label": "y",
                "secure_aggregation": {},
                "dp": {"mode": "central-server-fixed", "noise_multiplier": 1, "clipping_norm": 1},
            },
            "use central-client-fixed with secure_aggregation",
        ),
        (
            {"label": "y", "secure_aggregation": {"num_shares": 2, "reconstruction_threshold": 3}},
            "reconstruction_threshold cannot exceed num_shares",
        ),
        ({"label": "y", "colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_jobs_are_refused_with_the_field(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidInputError, match="federated job") as err:
        load_config(raw)
    assert reason in str(err.value)


def test_job_files_and_flag_overrides(tmp_path: Any) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("kind: FederatedJob\nspec:\n  label: default\n  rounds: 4\n")
    job = load_config(path, rounds=9)
    assert (job.label, job.rounds, job.strategy) == ("default", 9, "fedavg")
    assert job.dp is None and job.round_timeout == 120
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(InvalidInputError, match="silo name"):
        check_silo_name("bank a/../x")


def test_pooled_scaler_equals_the_scaler_of_all_rows() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.normal(i, 1 + i, (n, 3)) for i, n in enumerate([50, 400, 1200])]
    profiles = [{"n": len(p), "mean": p.mean(0).tolist(), "var": p.var(0).tolist()} for p in parts]
    means, scales = trainer.pooled_scaler(profiles, ["a", "b", "c"])
    everything = np.vstack(parts)
    np.testing.assert_allclose(means, everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(scales, everything.std(0), rtol=1e-10)


def test_silo_data_is_checked_before_training() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0] * 10, "kind": ["a", "b"] * 10, "y": [0, 1] * 10})
    with pytest.raises(InvalidInputError, match="encode kind at each silo"):
        trainer.check_columns(frame, "y")
    with pytest.raises(InvalidInputError, match="no label column 'z'"):
        trainer.check_columns(frame, "z")
    three = pd.DataFrame({"x": [1.0, 2.0, 3.0] * 5, "y": [0, 1, 2] * 5})
    with pytest.raises(InvalidInputError, match="must be 0/1"):
        trainer.check_columns(three, "y")
    gaps = pd.DataFrame({"x": [1.0, None] * 10, "y": [0, 1] * 10})
    with pytest.raises(InvalidInputError, match="missing values"):
        trainer.check_columns(gaps, "y")


def test_the_global_model_is_the_scikit_learn_pipeline_of_its_weights() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = (X @ [1.0, -2.0, 0.5] + rng.normal(size=2000) > 0).astype(float)
    w, loss = trainer.local_fit(
        trainer.initial_weights(3),
        X,
        y,
        epochs=5,
        batch_size=64,
        learning_rate=0.1,
        l2=0.0,
        proximal_mu=0.0,
        seed=0,
    )
    assert loss < 0.45
    model = trainer.to_estimator(w, ["a", "b", "c"], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    proba = model.predict_proba(pd.DataFrame(X[:10], columns=["a", "b", "c"]))[:, 1]
    np.testing.assert_allclose(proba, trainer.predict(w, X[:10]), rtol=1e-12)


def _report(eps: float | None, per_silo: dict[str, dict[str, float]]) -> dict[str, Any]:
    privacy = None
    if eps is not None:
        privacy = {
            "epsilon": eps,
            "delta": 1e-5,
            "releases": 6,
            "unit": "silo",
            "max_epsilon": 10.0,
            "differentially_private": eps <= 10,
            "noise_multiplier": 2.0,
            "clipping_norm": 0.5,
        }
    return {
        "job": {"strategy": "fedavg"},
        "silos": {
            s: {"fingerprint": {"sha256": "ab" * 32, "rows": 100, "profile": {}}} for s in per_silo
        },
        "rounds": [{"round": 1, "global": {"roc_auc": 0.8}}],
        "final": per_silo,
        "privacy": privacy,
        "privacy_statement": "(6, 1e-05)-differentially private per silo" if privacy else None,
    }


def _gate(report: dict[str, Any], checks: list[Any]) -> list[Any]:
    card = {"model_parameters": {"federated": federated_summary(report)}}
    policy = parse_policy({"label": "y", "checks": checks})
    ctx = GateContext(
        policy=policy,
        model_name="m",
        version=1,
        model=None,
        data=pd.DataFrame({"y": [0, 1]}),
        features=[],
        y_true=np.array([0, 1]),
        candidate=Outputs(np.array([0.2, 0.8]), np.array([0, 1])),
        card=card,
    )
    return [run_check(i, ctx) for i in range(len(checks))]


def test_privacy_check_reads_the_recorded_epsilon() -> None:
    silo = {
        "a": {
            "roc_auc": 0.8,
            "selection_rate": 0.2,
            "true_positive_rate": 0.6,
            "false_positive_rate": 0.1,
        }
    }
    ok, strict = _gate(
        _report(6.0, silo), [{"privacy": {"max_epsilon": 8}}, {"privacy": {"max_epsilon": 3}}]
    )
    assert ok.status == "passed" and ok.value == 6.0
    assert strict.status == "failed" and "fails epsilon <= 3" in strict.message
    (none,) = _gate(_report(None, silo), [{"privacy": {"max_epsilon": 8}}])
    assert none.status == "failed" and "records no differential privacy" in none.message


def test_silos_check_compares_every_silo_and_fairness_across_them() -> None:
    per_silo = {
        "a": {
            "roc_auc": 0.84,
            "selection_rate": 0.20,
            "true_positive_rate": 0.70,
            "false_positive_rate": 0.10,
        },
        "b": {
            "roc_auc": 0.80,
            "selection_rate": 0.10,
            "true_positive_rate": 0.50,
            "false_positive_rate": 0.05,
        },
    }
    passed, gap, fair = _gate(
        _report(None, per_silo),
        [
            {"silos": {"min": 0.75, "max_gap": 0.05}},
            {"silos": {"max_gap": 0.01}},
            {"silos": {"equalized_odds_difference_max": 0.1, "demographic_parity_ratio_min": 0.8}},
        ],
    )
    assert passed.status == "passed" and passed.value == pytest.approx(0.80)
    assert "worst b" in passed.message
    assert gap.status == "failed" and "gap 0.0400 above 0.01" in gap.message
    assert fair.status == "failed"
    assert fair.details["equalized_odds_difference"] == pytest.approx(0.2)
    assert fair.details["demographic_parity_ratio"] == pytest.approx(0.5)


def test_the_card_carries_the_silos_and_the_privacy_statement() -> None:
    per_silo = {"a": {"roc_auc": 0.81}, "b": {"roc_auc": 0.79}}
    card = new_card(
        name="m",
        version=1,
        description="",
        flavor="sklearn",
        model_class="Pipeline",
        signature={},
        metrics={},
        lineage={},
        data_profile=None,
        onnx=None,
        federated=_report(6.0, per_silo),
    )
    fed = card["model_parameters"]["federated"]
    assert set(fed["silos"]) == {"a", "b"} and fed["privacy"]["epsilon"] == 6.0
    assert fed["privacy_statement"] in card["considerations"]["limitations"]
    text = to_markdown(card)
    assert "## Federated training" in text and "| a | abababababababab… | 100 | 0.8100 |" in text
