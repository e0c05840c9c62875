"""The model registry on real stores: register, alias, load, refuse what is unsafe."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StateTransitionError,
    StoreError,
)
from shipyard.registry.card import to_html, to_markdown


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The registry on embedded SQLite, on PostgreSQL, and through a live server."""
    if request.param == "sqlite":
        shipyard.set_uri(str(tmp_path / "store"))
    elif request.param == "rest":
        server = request.getfixturevalue("token_server")  # token auth, as its admin
        monkeypatch.setenv("SHIPYARD_TOKEN", server.token)
        shipyard.set_uri(server.url)
    else:
        uri = request.getfixturevalue("postgres_uri")
        monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))  # undone after
        shipyard.set_uri(uri)
    yield
    shipyard.set_uri(None)


@pytest.fixture
def data(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(400, 8, random_state=seed)
    return pd.DataFrame(X, columns=[f"f_{i}" for i in range(8)]), y


@pytest.mark.usefixtures("store")
def test_register_alias_and_load_by_every_uri_form(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    first = LogisticRegression(max_iter=300).fit(X, y)
    second = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    v1 = shipyard.register_model("fraud", first, X[:5], description="baseline", training_data=X)
    v2 = shipyard.register_model("fraud", second, X[:5], tags={"team": "risk"})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.state.value == "candidate"
    assert "sklearn" in v2.flavors and "onnx" in v2.flavors  # verified conversion kept
    assert v2.tags == {"team": "risk"}
    assert v2.environment["scikit-learn"]
    assert [c["name"] for c in _inputs(v2)] == list(X.columns)

    shipyard.set_alias("fraud", "champion", 1, reason="test setup")
    shipyard.set_alias("fraud", "challenger", 2)
    shipyard.set_alias("fraud", "champion", 2, reason="test setup")  # moves: one version per alias
    model = shipyard.model_registry().get_model("fraud")
    assert model.aliases == {"champion": 2, "challenger": 2}
    assert model.latest_version == 2

    by_alias = shipyard.load_model("models:/fraud@champion")
    by_number = shipyard.load_model("models:/fraud/1")
    latest = shipyard.load_model("models:/fraud/latest")
    by_run = shipyard.load_model(f"runs:/{v1.run_id}/model")
    assert np.array_equal(by_alias.predict(X), second.predict(X))
    assert np.allclose(by_alias.predict_proba(X), second.predict_proba(X))
    assert np.array_equal(by_number.predict(X), first.predict(X))
    assert np.array_equal(latest.predict(X), second.predict(X))
    assert np.array_equal(by_run.predict(X), first.predict(X))
    # The ONNX twin agrees with the native model on every row, not only the example.
    onnx_out = by_alias.infer({c: X[c].to_numpy() for c in X.columns})
    assert np.array_equal(onnx_out["predict"], second.predict(X))
    assert np.allclose(onnx_out["predict_proba"], second.predict_proba(X), atol=1e-4)


def _inputs(mv: shipyard.ModelVersion) -> list[dict[str, object]]:
    import json

    return list(json.loads(mv.signature["inputs"]))


@pytest.mark.usefixtures("store")
def test_unknown_model_version_and_alias_are_clear_errors(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    shipyard.register_model("fraud", LogisticRegression().fit(X, y), X[:3])
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        shipyard.load_model("models:/nope/1")
    with pytest.raises(NotFoundError, match="has no version 7"):
        shipyard.load_model("models:/fraud/7")
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        shipyard.load_model("models:/fraud@champion")
    with pytest.raises(InvalidInputError, match="models:/NAME"):
        shipyard.load_model("fraud")
    with pytest.raises(InvalidInputError, match="positive integer"):
        shipyard.load_model("models:/fraud/0")
    with pytest.raises(InvalidInputError, match="input_example is required"):
        shipyard.register_model("fraud", LogisticRegression().fit(X, y))


@pytest.mark.usefixtures("store")
def test_deleted_versions_cannot_be_aliased_or_loaded(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    for _ in range(2):
        shipyard.register_model("fraud", LogisticRegression().fit(X, y), X[:3])
    shipyard.set_alias("fraud", "champion", 1, reason="test setup")
    reg = shipyard.model_registry()
    with pytest.raises(ConflictError, match="holds aliases champion"):
        reg.delete_version("fraud", 1)
    reg.delete_version("fraud", 1, force=True)
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        shipyard.load_model("models:/fraud@champion")
    with pytest.raises(NotFoundError, match="was deleted"):
        shipyard.set_alias("fraud", "champion", 1, reason="test setup")
    with pytest.raises(NotFoundError, match="was deleted"):
        shipyard.load_model("models:/fraud/1")
    assert [v.version for v in reg.list_versions("fraud")] == [2]
    assert [v.version for v in reg.list_versions("fraud", include_deleted=True)] == [2, 1]
    # Numbers are never reused.
    assert shipyard.register_model("fraud", LogisticRegression().fit(X, y), X[:3]).version == 3


@pytest.mark.usefixtures("store")
def test_lifecycle_moves_forward_only(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    shipyard.register_model("fraud", LogisticRegression().fit(X, y), X[:3])
    reg = shipyard.model_registry()
    with pytest.raises(StateTransitionError, match="candidate version cannot become production"):
        reg.transition("fraud", 1, "production")
    assert reg.transition("fraud", 1, "approved").state.value == "approved"
    # Production comes through approvals; by hand it is break-glass, with a reason, audited.
    with pytest.raises(InvalidInputError, match="break-glass: give a reason"):
        reg.transition("fraud", 1, "production")
    moved = reg.transition("fraud", 1, "production", reason="incident 42: approvals down")
    assert moved.state.value == "production"
    audit = shipyard.sdk.context.current().get_backend().governance.audit
    (event,) = audit.events(action="version.break_glass")
    assert event.payload["reason"] == "incident 42: approvals down"
    with pytest.raises(ConflictError, match="production state"):
        reg.delete_version("fraud", 1)
    assert reg.transition("fraud", 1, "retired").state.value == "retired"
    with pytest.raises(StateTransitionError, match="allowed: none"):
        reg.transition("fraud", 1, "candidate")
    with pytest.raises(InvalidInputError, match="state must be one of"):
        reg.transition("fraud", 1, "staging")


def test_tampered_artifact_is_refused(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = data
    shipyard.set_uri(str(tmp_path / "store"))
    mv = shipyard.register_model("fraud", LogisticRegression().fit(X, y), X[:3], convert_onnx=False)
    digest = mv.files["model.skops"]
    blob = next((tmp_path / "store" / "artifacts").rglob(digest))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(StoreError, match=r"hash|digest|tamper|match"):
        shipyard.load_model("models:/fraud/1")
    shipyard.set_uri(None)


def test_pickled_python_model_needs_trusted(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _ = data
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "resources"))
    from custom_model import ThresholdModel

    shipyard.set_uri(str(tmp_path / "store"))
    mv = shipyard.register_model("rules", ThresholdModel(0.0), X[:4].to_numpy())
    assert mv.flavors == ["python"]
    assert "code/custom_model.py" in mv.files
    with pytest.raises(PermissionDeniedError, match="trusted=True"):
        shipyard.load_model("models:/rules/1")
    sys.modules.pop("custom_model")
    loaded = shipyard.load_model("models:/rules/1", trusted=True)
    assert np.array_equal(loaded.predict(X.to_numpy()), (X.to_numpy()[:, 0] > 0).astype(int))
    shipyard.set_uri(None)


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_boosting_libraries_use_native_formats_and_onnx(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray], library: str
) -> None:
    X, y = data
    if library == "lightgbm":
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)
        native_file = "model.txt"
    else:
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=20).fit(X, y)
        native_file = "model.ubj"
    shipyard.set_uri(str(tmp_path / "store"))
    mv = shipyard.register_model("boost", model, X[:5])
    assert mv.flavors == [library, "onnx"]
    assert native_file in mv.files and "model.onnx" in mv.files
    loaded = shipyard.load_model("models:/boost/1")
    assert loaded.uses_onnx
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-5)
    shipyard.set_uri(None)


@pytest.mark.usefixtures("store")
def test_card_is_prefilled_editable_and_rendered(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    with shipyard.start_run(experiment="fraud") as run:
        shipyard.log_metric("val_auc", 0.91)
        uri = shipyard.log_model(LogisticRegression().fit(X, y), input_example=X[:3])
    mv = shipyard.register_model("fraud", uri, description="Card fraud scorer", training_data=X)
    card = mv.card
    assert card["model_details"]["overview"] == "Card fraud scorer"
    assert {"type": "val_auc", "value": 0.91} in card["quantitative_analysis"][
        "performance_metrics"
    ]
    assert card["model_parameters"]["data"]["training"]["lineage"]["training_run"] == run.id
    assert card["model_parameters"]["data"]["training"]["profile"]["rows"] == len(X)
    edited = shipyard.model_registry().edit_card(
        "fraud", 1, {"considerations.limitations": ["Not for credit decisions"]}
    )
    assert edited.card["considerations"]["limitations"] == ["Not for credit decisions"]
    md = to_markdown(edited.card)
    assert md.startswith("---\n") and "- Not for credit decisions" in md and "val_auc" in md
    html = to_html(edited.card)
    assert "<li>Not for credit decisions</li>" in html
    with pytest.raises(InvalidInputError, match="not editable"):
        shipyard.model_registry().edit_card("fraud", 1, {"model_details.name": "other"})


@pytest.mark.usefixtures("store")
def test_concurrent_registrations_get_distinct_numbers(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    with shipyard.start_run() as run:
        shipyard.log_model(model, input_example=X[:3], convert_onnx=False)
    reg = shipyard.model_registry()
    got: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            got.append(reg.register("fraud", run_id=run.id).version)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
