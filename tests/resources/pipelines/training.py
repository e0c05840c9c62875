"""A small training pipeline whose last step logs a model: for lineage tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard import pipeline, step


@step
def make(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(rows)
    x = rng.normal(size=(rows, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] > 0).astype(int)})


@step
def train(data: pd.DataFrame) -> str:
    model = LogisticRegression().fit(data[["a", "b", "c"]], data["y"])
    return shipyard.log_model(model, input_example=data[["a", "b", "c"]][:5], convert_onnx=False)


@step
def explode(data: pd.DataFrame) -> int:
    raise RuntimeError("no luck")


@pipeline
def training(rows: int = 200):
    return train(make(rows))


@pipeline
def broken(rows: int = 50):
    return explode(make(rows))
