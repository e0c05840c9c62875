"""Edge rules: the tree converter's parity, pruning search, targets, signed bundles, the
runtime's encoding and its telemetry buffer."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.datasets import load_diabetes, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from shipyard.core.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.demo.data import FEATURES, LABEL, make_transactions
from shipyard.edge import trees
from shipyard.edge.keys import KeyRing
from shipyard.edge.service import bucket
from shipyard.edge.targets import load_target
from shipyard.edge.variants import fewest_iterations
from shipyard.spec.loader import parse_spec
from shipyard_edge.bundle import BundleError, load_public_keys, verify, write_bundle
from shipyard_edge.model import encode
from shipyard_edge.telemetry import TelemetryBuffer


@pytest.fixture(scope="module")
def fraud_model() -> HistGradientBoostingClassifier:
    data = make_transactions(8000, seed=3)
    return HistGradientBoostingClassifier(
        max_iter=40, categorical_features="from_dtype", random_state=0
    ).fit(data[FEATURES], data[LABEL])


def _run(proto: object, X: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString())  # type: ignore[attr-defined]
    return session.run(None, {"input": X})


def _encoded(model: HistGradientBoostingClassifier, frame: pd.DataFrame) -> np.ndarray:
    columns = trees.input_of(model, FEATURES).columns
    rows = {n: frame[n].astype(object).where(frame[n].notna(), None).tolist() for n in FEATURES}
    return encode(columns, rows, "float64")


def test_categorical_boosting_converts_exactly_with_missing_and_unknown_values(
    fraud_model: HistGradientBoostingClassifier,
) -> None:
    test = make_transactions(3000, seed=4)
    test.loc[:50, "amount"] = np.nan
    test["country"] = test["country"].cat.add_categories(["XX"])
    test.loc[100:200, "country"] = "XX"  # a level the model never saw: treated as missing
    label, proba = _run(trees.to_onnx(fraud_model, len(FEATURES)), _encoded(fraud_model, test))
    assert np.abs(proba - fraud_model.predict_proba(test[FEATURES])).max() < 1e-12
    assert (label == fraud_model.predict(test[FEATURES])).all()


def test_pruned_conversion_equals_the_staged_prediction(
    fraud_model: HistGradientBoostingClassifier,
) -> None:
    test = make_transactions(1000, seed=5)
    staged = list(fraud_model.staged_predict_proba(test[FEATURES]))
    proto = trees.to_onnx(fraud_model, len(FEATURES), iterations=7)
    _, proba = _run(proto, _encoded(fraud_model, test))
    assert np.abs(proba - staged[6]).max() < 1e-12
    f32 = trees.to_onnx(fraud_model, len(FEATURES), precision="float32")
    _, proba32 = _run(f32, _encoded(fraud_model, test).astype("float32"))
    assert np.abs(proba32 - staged[-1]).max() < 1e-5
    assert len(f32.SerializeToString()) < len(trees.to_onnx(fraud_model, 6).SerializeToString())


def test_multiclass_and_log_link_regression_convert_exactly() -> None:
    X, y = load_digits(return_X_y=True)
    clf = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, y)
    label, proba = _run(trees.to_onnx(clf, X.shape[1]), X.astype("float64"))
    assert np.abs(proba - clf.predict_proba(X)).max() < 1e-12
    assert (label == clf.predict(X)).all()
    Xr, yr = load_diabetes(return_X_y=True)
    reg = HistGradientBoostingRegressor(max_iter=20, loss="poisson").fit(Xr, yr)
    (value,) = _run(trees.to_onnx(reg, Xr.shape[1]), Xr)
    assert np.allclose(value.ravel(), reg.predict(Xr), rtol=1e-10)


def test_an_old_opset_is_refused_with_the_reason(
    fraud_model: HistGradientBoostingClassifier,
) -> None:
    with pytest.raises(InvalidInputError, match="opset 21"):
        trees.to_onnx(fraud_model, len(FEATURES), opset=17)


def test_pruning_finds_the_fewest_iterations_that_are_good_enough() -> None:
    assert fewest_iterations(100, lambda k: k >= 37) == 37
    assert fewest_iterations(100, lambda k: k >= 100) is None  # only the whole ensemble
    assert fewest_iterations(1, lambda k: True) is None


def test_raising_a_rollouts_share_only_adds_devices() -> None:
    devices = [f"terminal-{i}" for i in range(2000)]
    at_10 = {d for d in devices if bucket("rol_1", d) < 10}
    at_50 = {d for d in devices if bucket("rol_1", d) < 50}
    assert at_10 < at_50
    assert 120 < len(at_10) < 280 and 900 < len(at_50) < 1100


def test_targets_come_from_the_spec_file_or_pyproject(tmp_path: Path) -> None:
    spec = tmp_path / "shipyard.yaml"
    spec.write_text(
        "apiVersion: shipyard.dev/v1\nkind: Experiment\nmetadata: {name: e}\nspec: {}\n---\n"
        "apiVersion: shipyard.dev/v1\nkind: EdgeTarget\nmetadata: {name: terminal}\n"
        "spec: {max_size_mb: 0.5, max_p99_ms: 2, threads: 1}\n"
    )
    target = load_target("terminal", [spec])
    assert (target.max_size_mb, target.max_p99_ms, target.max_metric_drop) == (0.5, 2, 0.005)
    assert [d.kind for d in parse_spec(spec.read_text())] == ["Experiment"]  # plan reads past
    toml = tmp_path / "pyproject.toml"
    toml.write_text("[tool.shipyard.edge.targets.phone]\nmax_size_mb = 1\nint8 = false\n")
    assert load_target("phone", [toml]).int8 is False
    with pytest.raises(NotFoundError, match="declared: terminal"):
        load_target("watch", [spec])
    toml.write_text('[tool.shipyard.edge.targets.bad]\nmetric = "f1"\n')
    with pytest.raises(InvalidInputError, match="metric must be one of"):
        load_target("bad", [toml])
    toml.write_text("[tool.shipyard.edge.targets.bad]\nthreads = 0\n")
    with pytest.raises(InvalidInputError, match="threads"):
        load_target("bad", [toml])


def _bundle(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    files = {"model.onnx": b"\x08\x07model-bytes", "signature.json": b'{"columns": []}'}
    path = tmp_path / "b.zip"
    write_bundle(path, files, {"bundle_id": "fraud-v1-terminal-abc"}, key)
    return path


def _rewrite(path: Path, change: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for name, body in change.items():
        if body is None:
            members.pop(name)
        else:
            members[name] = body
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    path.write_bytes(buf.getvalue())


def test_a_signed_bundle_verifies_and_any_change_is_refused(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    info = ring.create("release")
    key = ring.private("release")
    trusted = load_public_keys(Path(info.public_path))
    path = _bundle(tmp_path, key)
    good = path.read_bytes()
    found = verify(path, trusted)
    assert found.key_id == info.key_id and found.bundle_id == "fraud-v1-terminal-abc"

    cases: list[tuple[dict[str, bytes | None], str]] = [
        ({"model.onnx": b"\x08\x07model-bytez"}, "does not match its hash"),
        ({"extra.py": b"import os"}, "not in the manifest"),
        ({"signature.json": None}, "not in the bundle"),
        ({"../evil": b"x"}, "unsafe member name"),
    ]
    for change, message in cases:
        path.write_bytes(good)
        _rewrite(path, change)
        with pytest.raises(BundleError, match=message):
            verify(path, trusted)
    path.write_bytes(good)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["model"] = {"name": "other"}
    _rewrite(path, {"manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode()})
    with pytest.raises(BundleError, match="signature does not verify"):
        verify(path, trusted)
    path.write_bytes(good)
    stranger = load_public_keys(Path(KeyRing(tmp_path / "other").create("x").public_path))
    with pytest.raises(BundleError, match="not trusted here"):
        verify(path, stranger)
    path.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a zip"):
        verify(path, trusted)


def test_keys_are_never_overwritten_and_can_be_encrypted(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path, passphrase="s3cret")
    info = ring.create("release")
    assert info.encrypted
    assert (tmp_path / "release.key").stat().st_mode & 0o077 == 0
    with pytest.raises(ConflictError):
        ring.create("release")
    with pytest.raises(InvalidInputError, match="PASSPHRASE"):
        KeyRing(tmp_path, passphrase="wrong").private("release")
    with pytest.raises(InvalidInputError, match="key name"):
        ring.create("../up")


def test_the_runtime_encodes_rows_as_the_model_expects() -> None:
    columns = [
        {"name": "amount", "kind": "number"},
        {"name": "country", "kind": "category", "levels": ["DE", "FR"]},
        {"name": "card_present", "kind": "number"},
    ]
    rows = [
        {"amount": 12.5, "country": "FR", "card_present": True},
        {"amount": None, "country": "XX", "card_present": False},
    ]
    X = encode(columns, rows, "float32")
    assert X[0].tolist() == [12.5, 1.0, 1.0]
    assert np.isnan(X[1, 0]) and np.isnan(X[1, 1]) and X[1, 2] == 0.0
    with pytest.raises(BundleError, match="missing columns: country"):
        encode(columns, [{"amount": 1, "card_present": 1}])
    with pytest.raises(BundleError, match="takes numbers"):
        encode(columns, [{"amount": "lots", "country": "FR", "card_present": 1}])


def test_the_telemetry_buffer_is_bounded_and_counts_what_it_dropped(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path, max_bytes=1000)
    for i in range(30):
        buffer.append(json.dumps({"i": i, "pad": "x" * 80}))
    pending = buffer.pending()
    assert pending.bytes <= 1000 and pending.dropped == 30 - pending.records
    rows, dropped = buffer.batch(300)
    assert json.loads(rows[0][1])["i"] == 30 - pending.records  # the oldest went first
    buffer.acknowledge(rows[-1][0], dropped)
    after = buffer.pending()
    assert after.records == pending.records - len(rows) and after.dropped == 0
    buffer.close()
    again = TelemetryBuffer(tmp_path, max_bytes=1000)  # survives a restart
    assert again.pending().records == after.records
    again.close()


def test_lightgbm_converts_exactly_with_categories_and_missing_values() -> None:
    import lightgbm

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(4000, 4)), columns=list("abcd"))
    frame.loc[:300, "a"] = np.nan
    frame["shop"] = pd.Categorical(rng.integers(0, 8, 4000))
    y = (frame["b"] + frame["shop"].cat.codes.isin([1, 5]) + rng.normal(0, 0.5, 4000)) > 0.8
    model = lightgbm.LGBMClassifier(
        n_estimators=60, verbose=-1, min_data_per_group=5, cat_smooth=1
    ).fit(frame, y)
    X = frame.assign(shop=frame["shop"].cat.codes.astype(float)).to_numpy()
    label, proba = _run(trees.to_onnx(model, 5), X)
    assert np.abs(proba - model.predict_proba(frame)).max() < 1e-12
    assert (label == model.predict(frame)).all()
    _, cut = _run(trees.to_onnx(model, 5, iterations=10), X)
    assert np.abs(cut - model.predict_proba(frame, num_iteration=10)).max() < 1e-12
    zeros = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1, zero_as_missing=True).fit(
        frame[list("bcd")], y
    )
    with pytest.raises(InvalidInputError, match="zero_as_missing"):
        trees.to_onnx(zeros, 3)


def test_a_telemetry_record_becomes_a_prediction_log_record_or_a_clear_refusal() -> None:
    from shipyard.edge.service import _record

    body = {
        "ts_ms": 5,
        "latency_seconds": 0.001,
        "model": "fraud",
        "version": "3",
        "inputs": {"amount": [1.5, None], "card_present": [True, False], "country": ["FR", "XX"]},
        "outputs": {"predict": [0, 1], "predict_proba": [[0.9, 0.1], [0.2, 0.8]]},
    }
    record = _record("t-1", "lisbon", 7, 0, body)
    assert record.deployment == "edge-lisbon" and record.request_id == "t-1-7-0"
    assert record.inputs["card_present"].dtype == bool and np.isnan(record.inputs["amount"][1])
    assert set(record.outputs) == {"prediction", "proba_0", "proba_1"}  # as the model server
    assert record.outputs["proba_1"].tolist() == [0.1, 0.8]
    for change, message in (
        ({"inputs": {"amount": [[1], [2]]}}, "not scalars"),
        ({"inputs": {"amount": [1.0]}}, "list of 2 values"),
        ({"outputs": {"predict": [0, 1], "predict_proba": [["x", 1], [1, 0]]}}, "numbers"),
        ({"ts_ms": "soon"}, "needs ts_ms"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            _record("t-1", "lisbon", 7, 0, {**body, **change})
