"""A version's Markdown model card loads with huggingface_hub's ModelCard, in its own env."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from shipyard.registry.card import new_card, to_markdown
from tests.mlflow_compat.conftest import CLIENT, QUIET


def test_hugging_face_loads_the_cards_front_matter(mlflow_python: Path, tmp_path: Path) -> None:
    card = new_card(
        name="fraud",
        version=1,
        description="Card-fraud scorer",
        flavor="sklearn",
        model_class="LogisticRegression",
        signature={},
        metrics={"val_roc_auc": 0.91},
        lineage={"training_run": "run_01abc"},
        data_profile=None,
        onnx=None,
    )
    path = tmp_path / "README.md"
    path.write_text(to_markdown(card))
    done = subprocess.run(
        [str(mlflow_python), str(CLIENT), "hf_card", str(path)],
        env={**os.environ, **QUIET, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"library": "shipyard", "results": [["val_roc_auc", 0.91]]}
