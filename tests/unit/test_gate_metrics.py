"""Gate metrics and the cell bootstrap against a plain row bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from shipyard.core.errors import InvalidInputError
from shipyard.gates.metrics import metric_value, paired_bootstrap
from shipyard.gates.policy import load_policy, parse_policy


def _scores(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.2).astype(int)
    a = np.clip(0.3 * y + rng.random(rows) * 0.8, 0, 1)
    b = np.clip(0.25 * y + rng.random(rows) * 0.8, 0, 1)
    return y, a, b


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "log_loss"])
def test_cell_bootstrap_matches_a_row_bootstrap(metric: str) -> None:
    y, a, b = _scores(3000, 5)
    pa, pb = (a >= 0.5).astype(int), (b >= 0.5).astype(int)
    cmp = paired_bootstrap(metric, y, (a, pa), (b, pb), resamples=600, seed=1)
    rng = np.random.default_rng(2)
    sign = -1.0 if metric == "log_loss" else 1.0
    rows = []
    for _ in range(600):
        i = rng.integers(0, len(y), len(y))
        rows.append(
            sign
            * (metric_value(metric, y[i], a[i], pa[i]) - metric_value(metric, y[i], b[i], pb[i]))
        )
    naive_width = np.quantile(rows, 0.975) - np.quantile(rows, 0.025)
    width = cmp.upper - cmp.lower
    assert cmp.lower <= cmp.difference <= cmp.upper
    assert 0.75 < width / naive_width < 1.3
    if metric == "roc_auc":
        assert cmp.candidate == pytest.approx(roc_auc_score(y, a))


def test_a_clearly_better_model_has_an_interval_above_zero() -> None:
    y, a, b = _scores(20_000, 6)
    cmp = paired_bootstrap("roc_auc", y, (a, a > 0.5), (b, b > 0.5), resamples=300)
    assert cmp.lower > 0


def test_metric_errors_are_clear() -> None:
    y = np.zeros(10, dtype=int)
    with pytest.raises(InvalidInputError, match="both classes"):
        metric_value("roc_auc", y, np.zeros(10), y)
    with pytest.raises(InvalidInputError, match="needs a model with predict_proba"):
        metric_value("log_loss", y, None, y)
    with pytest.raises(InvalidInputError, match="cannot import custom metric"):
        metric_value("nowhere.module:fn", y, None, y)


def test_policy_shapes_and_errors(tmp_path: object) -> None:
    from pathlib import Path

    policy = parse_policy({"label": "y", "checks": [{"metric": "f1", "min": 0.5}, {"drift": None}]})
    assert [c.kind for c in policy.checks] == ["metric", "drift"]
    assert policy.digest == parse_policy(policy.model_dump(by_alias=True)).digest
    folder = Path(str(tmp_path))
    (folder / "bad.yaml").write_text("label: [unclosed")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        load_policy(folder / "bad.yaml")
    with pytest.raises(InvalidInputError, match="cannot read gate policy"):
        load_policy(folder / "missing.yaml")
    for bad, needle in [
        ({"label": "y", "checks": []}, "checks"),
        ({"label": "y", "checks": [{"metric": "f1"}]}, "give min, max or both"),
        ({"label": "y", "checks": [{"metric": "recall_at_precision", "min": 0.1}]}, "precision"),
        ({"label": "y", "checks": [{"metric": "f1", "min": 1, "drift": {}}]}, "metric"),
        ({"label": "y", "checks": [{"a": 1, "b": 2}]}, "one check per item"),
        ({"label": "y", "checks": ["roc_auc"]}, "must be a mapping"),
        ({"checks": [{"metric": "f1", "min": 1}]}, "label"),
    ]:
        with pytest.raises(InvalidInputError, match=needle):
            parse_policy(bad)


def test_fairness_on_weighted_cells_equals_fairlearn_on_every_row() -> None:
    import pandas as pd
    from fairlearn.metrics import (
        MetricFrame,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    from shipyard.gates.checks import GateContext, Outputs, run_check
    from shipyard.gates.policy import parse_policy

    rng = np.random.default_rng(7)
    n = 5000
    data = pd.DataFrame({"band": rng.choice(["a", "b", "c"], n), "y": rng.integers(0, 2, n)})
    pred = (rng.random(n) < np.where(data["band"] == "c", 0.6, 0.4)).astype(int)
    policy = parse_policy(
        {
            "label": "y",
            "checks": [{"fairness": {"sensitive": "band", "reference": "a", "favourable": 1}}],
        }
    )
    ctx = GateContext(policy, "m", 1, None, data, [], data["y"].to_numpy(), Outputs(None, pred))
    result = run_check(0, ctx)
    full = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "recall": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=data["y"],
        y_pred=pred,
        sensitive_features=data["band"],
    )
    groups = {g["group"]: g for g in result.details["groups"]}
    for band, row in full.by_group.iterrows():
        for metric in ("selection_rate", "recall", "false_positive_rate"):
            assert groups[str(band)][metric] == pytest.approx(row[metric])
        assert groups[str(band)]["count"] == int((data["band"] == band).sum())
    eod = equalized_odds_difference(data["y"], pred, sensitive_features=data["band"])
    assert result.details["equalized_odds_difference"] == pytest.approx(eod)
    rates = full.by_group["selection_rate"]
    assert groups["c"]["adverse_impact_ratio"] == pytest.approx(rates["c"] / rates["a"])
