"""Model flavours are registrations: each module of shipyard.registry.flavors is one, and
a package written with any of them reads back to the same predictions."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.registry import flavors as fl
from shipyard.registry.package import load_package, read_mlmodel, save_package


class Doubler:
    """A generic Python model (the pickle flavour)."""

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        return np.asarray(X, dtype="float64").sum(axis=1) * 2


def _data() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    return X, (X["a"] + X["b"] > 0).astype(int).to_numpy()


def _model(kind: str) -> Any:
    X, y = _data()
    if kind == "sklearn":
        return LogisticRegression().fit(X, y)
    if kind == "xgboost":
        xgb = pytest.importorskip("xgboost")
        return xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    if kind == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        return lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    if kind == "onnx":
        pytest.importorskip("skl2onnx")
        from shipyard.registry.onnx_convert import to_onnx_proto

        return to_onnx_proto(LogisticRegression().fit(X, y), "sklearn", 3)
    return Doubler()


def test_every_flavour_module_is_registered_in_recognition_order() -> None:
    assert list(fl.kinds()) == ["onnx", "xgboost", "lightgbm", "sklearn", "python"]
    # XGBoost's classes derive from scikit-learn's: it must be recognised first.
    assert fl.detect_flavor(_model("xgboost")) == "xgboost"
    assert fl.detect_flavor(_model("sklearn")) == "sklearn"
    assert fl.detect_flavor(Doubler()) == "python"
    with pytest.raises(InvalidInputError, match="no predict method"):
        fl.detect_flavor(object())
    with pytest.raises(InvalidInputError, match="unknown model flavour 'pmml'"):
        fl.flavor_kind("pmml")


@pytest.mark.parametrize("kind", ["sklearn", "xgboost", "lightgbm", "onnx", "python"])
def test_each_flavour_round_trips_to_the_same_predictions(kind: str, tmp_path: Path) -> None:
    X, _ = _data()
    model = _model(kind)
    example = X.head(5).astype("float32") if kind == "onnx" else X.head(5)
    info = save_package(model, tmp_path, input_example=example, run_id="r1", artifact_path="m")
    mlmodel = read_mlmodel(tmp_path)
    block = mlmodel["flavors"][kind]
    spec = fl.flavor_kind(kind)
    # MLflow's own loader where it has one, with MLflow's keys beside ours.
    loader = mlmodel["flavors"]["python_function"]["loader_module"]
    assert loader == (spec.mlflow_loader or "shipyard.registry.pyfunc")
    assert spec.mlflow_keys(block).items() <= block.items()
    assert fl.check_flavor(fl.Flavor(kind, block), tmp_path) is not None
    requirements = (tmp_path / "requirements.txt").read_text()
    assert all(d in requirements for d in spec.needs if fl.package_version(d) and d != "shipyard")
    trusted = kind == "python"
    if trusted:
        with pytest.raises(PermissionDeniedError, match="pickle"):
            load_package(tmp_path, expected_files=info.files)
    loaded = load_package(tmp_path, trusted=trusted, expected_files=info.files)
    if kind == "onnx":  # the converted logistic regression decides as the original does
        X32 = X.astype("float32")
        expected = LogisticRegression().fit(X, _data()[1]).predict(X32)
        np.testing.assert_array_equal(loaded.native.predict(X32), expected)
    else:
        np.testing.assert_allclose(loaded.native.predict(X), model.predict(X))
    if spec.to_onnx is not None and info.conversion is not None and info.conversion.converted:
        assert "onnx" in mlmodel["flavors"]


TOY = '''
"""A toy flavour: a model that is a list of coefficients, stored as JSON."""

import json

import numpy as np

from shipyard.registry.flavors._base import FlavorKind, confined, model_file


class Linear:
    def __init__(self, coef):
        self.coef = list(coef)

    def predict(self, X):
        return np.asarray(X, dtype="float64") @ np.asarray(self.coef)


def _save(model, folder):
    (folder / "coef.json").write_text(json.dumps(model.coef))
    return {"model_file": "coef.json"}


def _load(conf, folder, trusted):
    return Linear(json.loads(confined(folder, model_file(conf)).read_text()))


FLAVOR = FlavorKind(
    name="toylinear",
    priority=5,
    detect=lambda model: type(model).__name__ == "Linear",
    save=_save,
    load=_load,
    needs=("numpy", "shipyard"),
)
'''


def test_a_new_flavour_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "toylinear.py").write_text(textwrap.dedent(TOY))
    monkeypatch.setattr(fl, "__path__", [*fl.__path__, str(extra)])
    fl.kinds.cache_clear()
    try:
        assert "toylinear" in fl.kinds()
        module = sys.modules["shipyard.registry.flavors.toylinear"]
        model = module.Linear([1.0, -2.0])
        X = np.array([[1.0, 1.0], [3.0, 0.5]])
        folder = tmp_path / "pkg"
        folder.mkdir()
        info = save_package(model, folder, input_example=X, run_id="r1", artifact_path="m")
        assert info.flavors[0] == "toylinear"
        assert read_mlmodel(folder)["flavors"]["python_function"]["loader_module"] == (
            "shipyard.registry.pyfunc"
        )
        loaded = load_package(folder, expected_files=info.files)
        np.testing.assert_allclose(loaded.predict(X), [-1.0, 2.0])
    finally:
        sys.modules.pop("shipyard.registry.flavors.toylinear", None)
        monkeypatch.undo()
        fl.kinds.cache_clear()
    assert "toylinear" not in fl.kinds()


def test_a_lightgbm_model_on_categories_scores_text_columns(tmp_path: Path) -> None:
    """LightGBM trained on pandas categories refuses object or string columns; loaded from
    the registry it maps them to the trained levels, as the fitted model does."""
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"amount": rng.lognormal(3, 1, 1000), "country": rng.choice(["PT", "FR", "US"], 1000)}
    )
    label = ((frame["country"] == "US") & (frame["amount"] > 20)).astype(int)
    categories = frame.assign(country=frame["country"].astype("category"))
    model = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(categories, label)
    info = save_package(
        model, tmp_path, input_example=categories.head(5), run_id="r1", artifact_path="m"
    )
    loaded = load_package(tmp_path, expected_files=info.files)
    for given in (frame, frame.astype({"country": object}), categories):
        np.testing.assert_array_equal(loaded.predict(given), model.predict(categories))
        np.testing.assert_allclose(loaded.predict_proba(given), model.predict_proba(categories))
