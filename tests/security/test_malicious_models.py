"""Model files crafted to run code: nothing they name runs in any process that loads them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.core.errors import InvalidInputError, PermissionDeniedError
from shipyard.core.hashing import sha256_file
from shipyard.core.skops_trust import UnsafeModelError, check_tree_bounds, is_safe_type
from shipyard.gates.policy import parse_policy
from shipyard.sdk.gates import check_gates
from tests.resources.malicious import craft_skops, pickle_package, poison_package, reduce_node


@pytest.fixture(params=["sqlite", "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The embedded store and a live server."""
    uri = (
        str(tmp_path / "store")
        if request.param == "sqlite"
        else request.getfixturevalue("server").url
    )
    shipyard.set_uri(uri)
    yield uri
    shipyard.set_uri(None)


def _frame(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    return X, (X["a"] > 0).astype(int).to_numpy()


def _poisoned_run(tmp_path: Path, marker: Path, seed: int, poison: Any = poison_package) -> str:
    """A run holding a model package whose skops file runs ``touch marker`` when trusted
    (or, with ``poison=pickle_package``, whose pickle does when unpickled)."""
    X, y = _frame(seed)
    with shipyard.start_run(experiment="attack") as run:
        shipyard.log_model(LogisticRegression().fit(X, y), input_example=X[:5])
    folder = tmp_path / "pkg"
    svc = shipyard.model_registry()
    for record in svc.tracking.list_artifacts(run.id):
        name = record.name.removeprefix("model/")
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        svc.tracking.download_artifact(run.id, record.name, folder / name)
    poison(folder, marker)
    with shipyard.start_run(experiment="attack") as run2:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                svc.tracking.log_artifact(run2.id, path, f"model/{path.relative_to(folder)}")
    return run2.id


def _smuggle_version(run_id: str) -> shipyard.ModelVersion:
    """Write a version record straight into the store, as one registered before the fix."""
    svc = shipyard.model_registry()
    files = {
        r.name.removeprefix("model/"): r.digest
        for r in svc.tracking.list_artifacts(run_id)
        if r.name.startswith("model/")
    }
    return svc.store.create_version(
        "evil",
        {
            "run_id": run_id,
            "artifact_path": "model",
            "description": "",
            "tags": {},
            "created_by": "mallory",
            "flavors": ["sklearn"],
            "signature": {},
            "files": files,
            "environment": {},
            "card": {},
        },
    )


@pytest.mark.usefixtures("store")
def test_registering_a_skops_file_that_builds_os_system_is_refused(
    tmp_path: Path, seed: int
) -> None:
    marker = tmp_path / "PWNED"
    run_id = _poisoned_run(tmp_path, marker, seed)
    with pytest.raises(InvalidInputError, match=r"never trusts.*os\.system"):
        shipyard.register_model("evil", f"runs:/{run_id}/model")
    with pytest.raises(InvalidInputError, match=r"os\.system"):
        shipyard.load_model(f"runs:/{run_id}/model")
    assert not marker.exists()


def test_loading_serving_and_gating_a_smuggled_version_runs_nothing(
    tmp_path: Path, seed: int
) -> None:
    store = tmp_path / "store"
    shipyard.set_uri(str(store))
    marker = tmp_path / "PWNED"
    try:
        run_id = _poisoned_run(tmp_path, marker, seed)
        evil = _smuggle_version(run_id)
        shipyard.model_registry().store.set_alias("evil", "champion", evil.version)
        with pytest.raises(UnsafeModelError):
            shipyard.load_model("models:/evil@champion")
        # A harmless candidate whose champion is the crafted model: the gate loads both.
        X, y = _frame(seed)
        good = shipyard.register_model("evil", LogisticRegression().fit(X, y), X[:5])
        policy = parse_policy(
            {
                "label": "y",
                "checks": [{"champion_challenger": {"metric": "roc_auc", "max_drop": 0.5}}],
            }
        )
        with pytest.raises(UnsafeModelError):
            check_gates("evil", good.version, policy, X.assign(y=y))
        env = {**os.environ, "SHIPYARD_URI": str(store)}
        served = subprocess.run(
            [sys.executable, "-m", "shipyard", "serve", "models:/evil@champion", "--port", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert served.returncode == 2, served.stderr
        assert "os.system" in served.stderr
        assert "Traceback" not in served.stderr
    finally:
        shipyard.set_uri(None)
    assert not marker.exists()


def test_a_registered_pickle_is_never_unpickled_by_load_serve_gates_or_the_server(
    server: object, tmp_path: Path, seed: int
) -> None:
    """A pickle may be registered (MLflow models often are), and stays untrusted: the
    server never opens it, and loading, serving and gating refuse it unless trusted."""
    import httpx

    url = server.url  # type: ignore[attr-defined]
    marker = tmp_path / "PWNED"
    shipyard.set_uri(url)
    try:
        run_id = _poisoned_run(tmp_path, marker, seed, pickle_package)
        answer = httpx.post(
            f"{url}/api/v1/models/pickled/versions",
            json={"run_id": run_id, "artifact_path": "model"},
            timeout=60,
        )
        assert answer.status_code == 201, answer.text
        assert not marker.exists(), "the server unpickled the upload"
        version = answer.json()["version"]
        with pytest.raises(PermissionDeniedError, match="pickle"):
            shipyard.load_model(f"models:/pickled/{version}")
        X, y = _frame(seed)
        policy = parse_policy({"label": "y", "checks": [{"metric": "roc_auc", "min": 0.5}]})
        with pytest.raises(PermissionDeniedError, match="pickle"):
            check_gates("pickled", version, policy, X.assign(y=y))
        env = {**os.environ, "SHIPYARD_URI": url}
        served = subprocess.run(
            [
                sys.executable,
                "-m",
                "shipyard",
                "serve",
                f"models:/pickled/{version}",
                "--port",
                "0",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert served.returncode == 2, served.stderr
        assert "pickle" in served.stderr and "Traceback" not in served.stderr
    finally:
        shipyard.set_uri(None)
    assert not marker.exists()


def test_server_answers_a_crafted_registration_with_a_json_4xx(
    server: object, tmp_path: Path, seed: int
) -> None:
    import httpx

    url = server.url  # type: ignore[attr-defined]
    shipyard.set_uri(url)
    marker = tmp_path / "PWNED"
    try:
        run_id = _poisoned_run(tmp_path, marker, seed)
    finally:
        shipyard.set_uri(None)
    # The server's first registration imports scikit-learn and skops: allow for a busy machine.
    response = httpx.post(
        f"{url}/api/v1/models/evil/versions",
        json={"run_id": run_id, "artifact_path": "model"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert "os.system" in response.json()["error"]
    assert not marker.exists()


def test_xgboost_flavour_builds_only_classes_from_its_table(tmp_path: Path) -> None:
    from shipyard.registry.flavors import Flavor, check_flavor, load_flavor

    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBClassifier(n_estimators=2).fit(np.eye(4), [0, 1, 0, 1])
    model.save_model(tmp_path / "model.ubj")
    for cls in ("os.abort", "builtins.exec", "subprocess.Popen"):
        flavor = Flavor("xgboost", {"model_file": "model.ubj", "model_class": cls})
        with pytest.raises(UnsafeModelError, match="model_class"):
            check_flavor(flavor, tmp_path)
        with pytest.raises(UnsafeModelError, match="model_class"):
            load_flavor(flavor, tmp_path)
    ok = Flavor(
        "xgboost", {"model_file": "model.ubj", "model_class": "xgboost.sklearn.XGBClassifier"}
    )
    assert load_flavor(ok, tmp_path).predict(np.eye(4)).shape == (4,)
    escape = Flavor("xgboost", {"model_file": "../x.ubj", "model_class": "xgboost.core.Booster"})
    with pytest.raises(UnsafeModelError, match="outside"):
        check_flavor(escape, tmp_path)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("os.system", False),
        ("builtins.exec", False),
        ("builtins.eval", False),
        ("subprocess.Popen", False),
        ("operator.methodcaller", False),
        ("numpy.memmap", False),
        ("numpy.load", False),
        ("numpy.fromfile", False),
        ("scipy.io.FortranFile", False),
        ("scipy.LowLevelCallable", False),
        ("sklearn.datasets.fetch_openml", False),
        ("sklearn.utils._testing.TempMemmap", False),
        ("sklearn.linear_model.LogisticRegression.fit", False),
        ("numpy.nonexistent", False),
        ("sklearn.tree._tree.Tree", True),
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", True),
        ("numpy.float64", True),
        ("numpy.log1p", True),
    ],
)
def test_allow_list_takes_classes_of_scikit_learn_numpy_and_scipy_only(
    name: str, safe: bool
) -> None:
    assert is_safe_type(name) is safe


def test_crafted_types_are_refused_at_load_whatever_mlmodel_lists(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    for node in (
        reduce_node("os", "system", f"touch {marker}"),
        reduce_node("builtins", "exec", f"open({str(marker)!r}, 'w')"),
        reduce_node("numpy", "memmap", str(marker), "w+", "uint8", "0", "(1,)"),
    ):
        path = tmp_path / "m.skops"
        craft_skops(path, node)
        from shipyard.core.skops_trust import load_skops

        with pytest.raises(UnsafeModelError):
            load_skops(path)
    assert not marker.exists()


def test_tree_with_out_of_range_children_is_refused(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(100, 3))
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, X[:, 0] > 0)
    check_tree_bounds(forest)
    tree = forest.estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"]["left_child"][0] = 10**6
    tree.__setstate__(state)
    with pytest.raises(UnsafeModelError, match="outside its arrays"):
        check_tree_bounds(forest)


def test_mlmodel_cannot_point_a_flavour_at_a_file_outside_the_package(tmp_path: Path) -> None:
    from shipyard.registry.package import load_package

    X, y = _frame(0)
    shipyard.set_uri(str(tmp_path / "store"))
    try:
        with shipyard.start_run() as run:
            shipyard.log_model(LogisticRegression().fit(X, y), input_example=X[:5])
        folder = tmp_path / "pkg"
        svc = shipyard.model_registry()
        for r in svc.tracking.list_artifacts(run.id):
            svc.tracking.download_artifact(run.id, r.name, folder / r.name.removeprefix("model/"))
    finally:
        shipyard.set_uri(None)
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    outside = tmp_path / "outside.skops"
    (folder / "model.skops").rename(outside)
    mlmodel["flavors"]["sklearn"]["model_file"] = "../outside.skops"
    mlmodel["flavors"]["sklearn"]["sha256"] = sha256_file(outside)[0]
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(UnsafeModelError, match="outside its package"):
        load_package(folder)
