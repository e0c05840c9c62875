"""The fluent SDK gives the same answers embedded and through a server."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import shipyard
from shipyard.core.errors import ConflictError, InvalidInputError
from tests.conftest import ServerProcess


def _session(tmp: Path) -> dict[str, object]:
    with shipyard.start_run(experiment="fraud", run_name="parent", tags={"team": "risk"}) as parent:
        shipyard.log_params({"model": "lgbm", "depth": 4})
        for step in range(50):
            shipyard.log_metric("loss", 1 / (step + 1), step=step)
        shipyard.log_metrics({"auc": 0.91, "nan": float("nan")})
        shipyard.log_dict({"threshold": 0.3}, "config/threshold.json")
        with shipyard.start_run(run_name="child", nested=True) as child:
            shipyard.log_metric("auc", 0.5)
        with pytest.raises(ConflictError):
            shipyard.log_param("model", "xgb")
    with pytest.raises(RuntimeError), shipyard.start_run(experiment="fraud", run_name="crash"):
        raise RuntimeError("boom")
    runs = shipyard.search_runs("fraud", "metrics.auc > 0.9", ["metrics.auc DESC"]).runs
    p = shipyard.get_run(parent.id)
    shipyard.download_artifact(parent.id, "config/threshold.json", tmp)
    crashed = shipyard.search_runs("fraud", "attributes.run_name = 'crash'").runs[0]
    return {
        "found": [r.name for r in runs],
        "status": p.status.value,
        "params": p.params,
        "auc": p.metrics["auc"],
        "nan": math.isnan(p.metrics["nan"]),
        "loss_points": len(shipyard.get_metric_history(parent.id, "loss")),
        "child_parent": shipyard.get_run(child.id).parent_id == parent.id,
        "artifact": json.loads((tmp / "threshold.json").read_text()),
        "crashed": crashed.status.value,
    }


EXPECTED = {
    "found": ["parent"],
    "status": "FINISHED",
    "params": {"model": "lgbm", "depth": "4"},
    "auc": 0.91,
    "nan": True,
    "loss_points": 50,
    "child_parent": True,
    "artifact": {"threshold": 0.3},
    "crashed": "FAILED",
}


def test_sdk_embedded(tmp_path: Path) -> None:
    shipyard.set_uri(str(tmp_path / "store"))
    try:
        assert _session(tmp_path) == EXPECTED
    finally:
        shipyard.set_uri(None)


def test_sdk_through_a_server(server: ServerProcess, tmp_path: Path) -> None:
    shipyard.set_uri(server.url)
    try:
        assert _session(tmp_path) == EXPECTED
    finally:
        shipyard.set_uri(None)


def test_starting_a_second_run_without_nested_is_refused(tmp_path: Path) -> None:
    shipyard.set_uri(str(tmp_path / "store"))
    try:
        with (
            shipyard.start_run(experiment="x"),
            pytest.raises(InvalidInputError, match="nested=True"),
        ):
            shipyard.start_run()
    finally:
        shipyard.set_uri(None)


def test_log_figure(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shipyard.set_uri(str(tmp_path / "store"))
    try:
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        with shipyard.start_run(experiment="figs") as run:
            rec = shipyard.log_figure(fig, "plots/roc.png")
        plt.close(fig)
        assert rec.media_type == "image/png" and rec.size > 1000
        data = shipyard.download_artifact(run.id, "plots/roc.png", tmp_path).read_bytes()
        assert data.startswith(b"\x89PNG")
    finally:
        shipyard.set_uri(None)
