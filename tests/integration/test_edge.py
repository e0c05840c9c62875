"""Edge end to end: export under budgets from the CLI, signed bundles checked by the device
runtime, and staged rollouts with telemetry through a real server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard
from shipyard.bootstrap import local_backend, rest_backend
from shipyard.core.actor import acting_as
from shipyard.core.errors import InvalidInputError
from shipyard.core.settings import Settings
from shipyard.demo.data import FEATURES, LABEL, make_transactions
from shipyard.edge.keys import KeyRing
from shipyard.edge.service import deployment_of
from shipyard.edge.targets import EdgeTarget
from shipyard.predlog.source import ParquetPredictionSource
from shipyard_edge import EdgeModel, Platform, PlatformUnreachableError, TelemetryBuffer
from shipyard_edge.bundle import load_public_keys
from tests.conftest import TokenServer, issue_tokens
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.slow

SPEC = """\
apiVersion: shipyard.dev/v1
kind: EdgeTarget
metadata: {name: terminal}
spec: {max_size_mb: 0.2, max_p99_ms: 2.0, max_metric_drop: 0.005, max_score_diff: 0.05}
---
apiVersion: shipyard.dev/v1
kind: EdgeTarget
metadata: {name: phone}
spec: {max_size_mb: 1.0, max_metric_drop: 0.01}
---
apiVersion: shipyard.dev/v1
kind: EdgeTarget
metadata: {name: impossible}
spec: {max_size_mb: 0.0001}
"""


def _fraud_model(seed: int) -> HistGradientBoostingClassifier:
    data = make_transactions(12_000, seed=seed)
    return HistGradientBoostingClassifier(
        max_iter=60, categorical_features="from_dtype", random_state=seed
    ).fit(data[FEATURES], data[LABEL])


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A store with a fraud model (categorical boosting) and an MLP, a held-out file each,
    the targets in shipyard.yaml and a signing key."""
    home = tmp_path / "store"
    shipyard.set_uri(str(home))
    shipyard.register_model("fraud", _fraud_model(1), make_transactions(5, seed=9)[FEATURES])
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    mlp = make_pipeline(
        StandardScaler(), MLPClassifier((256, 128), max_iter=300, random_state=0)
    ).fit(X[:400], y[:400])
    shipyard.register_model("cancer", mlp, X[:5])
    shipyard.set_uri(None)
    make_transactions(4000, seed=21).to_parquet(tmp_path / "holdout.parquet")
    X[400:].assign(label=y[400:]).to_parquet(tmp_path / "cancer.parquet")
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    env = {"SHIPYARD_URI": str(home)}
    assert cli("edge", "keys", "create", "release", env=env).returncode == 0
    return tmp_path, env


def _export(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "edge",
        "export",
        *args,
        "--key",
        "release",
        "--spec",
        str(tmp / "shipyard.yaml"),
        "--json",
        env=env,
    )


def _device(*args: str) -> subprocess.CompletedProcess[str]:
    """``shipyard-edge`` in a process of its own, as on a device."""
    return subprocess.run(
        [sys.executable, "-m", "shipyard_edge", *args], capture_output=True, text=True, timeout=60
    )


def _export_fraud(
    tmp: Path, env: dict[str, str], target: str, *extra: str, label: str = LABEL
) -> subprocess.CompletedProcess[str]:
    """The fraud model's export for ``target`` on the held-out file."""
    held_out = str(tmp / "holdout.parquet")
    return _export(tmp, env, "models:/fraud/1", "-t", target, "-d", held_out, "-l", label, *extra)


def test_export_chooses_the_smallest_variant_within_budget_and_signs_it(
    project: tuple[Path, dict[str, str]],
) -> None:
    tmp, env = project
    out = _export_fraud(
        tmp,
        env,
        "terminal",
        "-o",
        str(tmp / "fraud.zip"),
        "--html",
        str(tmp / "report.html"),
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    variants = {v["name"]: v for v in report["variants"]}
    chosen = variants[report["chosen"]]
    assert chosen["status"] == "passed"
    assert variants["onnx"]["measured"]["max_abs_diff"] < 1e-9  # the exact conversion
    assert "not applicable" in variants["int8-dynamic"]["reasons"][0]  # trees: said, not faked
    passed = [v for v in variants.values() if v["status"] == "passed"]
    assert chosen["measured"]["size_bytes"] == min(v["measured"]["size_bytes"] for v in passed)
    m = chosen["measured"]
    assert m["size_bytes"] <= 0.2e6 and m["p99_ms"] <= 2.0 and m["metric_drop"] <= 0.005
    assert m["max_abs_diff"] <= 0.05
    assert report["native"]["size_bytes"] > 3 * m["size_bytes"]
    assert "Edge export: models:/fraud/1" in (tmp / "report.html").read_text()
    # The device runtime, in a process of its own, trusts the bundle with the public key.
    public = tmp / "store" / "edge-keys" / "release.pub"
    bundle, keys = str(tmp / "fraud.zip"), ("--keys", str(public))
    device = _device("verify", bundle, *keys)
    assert device.returncode == 0, device.stderr
    assert json.loads(device.stdout)["bundle"] == report["bundle"]["id"]
    # The device's command line: predict JSON-lines rows, keep telemetry; offline sync waits.
    rows_file = tmp / "rows.jsonl"
    rows_file.write_text(
        "\n".join(
            json.dumps(r)
            for r in make_transactions(5, seed=8)[FEATURES].astype(object).to_dict("records")
        )
    )
    telemetry = ("--telemetry", str(tmp / "device"))
    predicted = _device("predict", bundle, *keys, "--rows", str(rows_file), *telemetry)
    assert predicted.returncode == 0, predicted.stderr
    assert [set(json.loads(line)) for line in predicted.stdout.splitlines()] == [
        {"predict", "score"}
    ] * 5
    offline = _device(
        "sync", "--platform", "http://127.0.0.1:9", "--device", "t-1", "--group", "g",
        *telemetry, "--bundle", bundle, *keys,
    )  # fmt: skip
    assert offline.returncode == 2 and "unreachable" in offline.stderr
    kept = TelemetryBuffer(tmp / "device")
    assert kept.pending().records == 1  # kept for the next sync
    kept.close()
    # What a device imports to verify, load and predict: none of the platform's stack.
    probe = (
        "import sys, json; from shipyard_edge import EdgeModel, load_public_keys; "
        f"m = EdgeModel.open({str(tmp / 'fraud.zip')!r}, load_public_keys({str(public)!r})); "
        "m.predict([{'amount': 10.0, 'merchant_category': 'fuel', 'hour': 3, 'country': 'FR',"
        " 'age_band': '65+', 'card_present': True}]); print(json.dumps(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    heavy = {"shipyard", "sqlalchemy", "fastapi", "pandas", "sklearn", "pydantic", "scipy"}
    assert heavy.isdisjoint(m.split(".")[0] for m in json.loads(loaded.stdout))
    # The bundle predicts what the registered model predicts on raw rows (strings included).
    model = EdgeModel.open(tmp / "fraud.zip", load_public_keys(public))
    rows = make_transactions(300, seed=33)
    records = rows[FEATURES].astype(object).to_dict("records")
    scores = model.predict(records).score
    shipyard.set_uri(env["SHIPYARD_URI"])
    native = shipyard.load_model("models:/fraud/1").predict_proba(rows[FEATURES])[:, 1]
    shipyard.set_uri(None)
    assert np.abs(scores - native).max() <= 0.05
    # Any change to the bundle is refused by both verifiers, with a one-line reason.
    data = bytearray((tmp / "fraud.zip").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (tmp / "tampered.zip").write_bytes(bytes(data))
    refused = cli("edge", "verify", str(tmp / "tampered.zip"), env=env)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    again = _export_fraud(tmp, env, "terminal")
    assert json.loads(again.stdout)["bundle"]["id"] == report["bundle"]["id"]  # one bundle
    listed = json.loads(cli("edge", "bundles", "--json", env=env).stdout)
    assert [b["id"] for b in listed] == [report["bundle"]["id"]]


def test_int8_variants_shrink_a_neural_network_and_impossible_budgets_ship_nothing(
    project: tuple[Path, dict[str, str]],
) -> None:
    tmp, env = project
    out = _export(
        tmp,
        env,
        "models:/cancer/1",
        "-t",
        "phone",
        "-d",
        str(tmp / "cancer.parquet"),
        "-l",
        "label",
    )
    assert out.returncode == 0, out.stderr
    variants = {v["name"]: v for v in json.loads(out.stdout)["variants"]}
    base = variants["onnx"]["measured"]["size_bytes"]
    for name in ("int8-dynamic", "int8-static", "fp16"):
        assert variants[name]["measured"] is not None, variants[name]["reasons"]
    assert variants["int8-dynamic"]["measured"]["size_bytes"] < base / 3
    assert variants["fp16"]["measured"]["size_bytes"] < base * 0.6
    nothing = _export_fraud(tmp, env, "impossible")
    assert nothing.returncode == 1
    body = json.loads(nothing.stdout)
    assert body["chosen"] is None and body["bundle"] is None
    assert all("FAIL: size" in " ".join(v["reasons"]) for v in body["variants"] if v["measured"])
    assert len(json.loads(cli("edge", "bundles", "--json", env=env).stdout)) == 1
    bad = _export_fraud(tmp, env, "terminal", label="no_such_column")
    assert bad.returncode == 2 and "no label column 'no_such_column'" in bad.stderr


def _export_in_process(settings: Settings, key: object, seed: int, version: int) -> str:
    backend = local_backend(settings)
    try:
        target = EdgeTarget(name="terminal", max_size_mb=0.5, max_score_diff=0.05)
        holdout = make_transactions(3000, seed=seed + 50)
        with acting_as("mlops"):
            _, record = backend.edge.export(f"models:/fraud/{version}", target, holdout, LABEL, key)
        assert record is not None
        return record.id
    finally:
        backend.close()


def test_staged_rollout_telemetry_and_rollback_through_a_server(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    settings = Settings(uri=str(home))
    tokens = issue_tokens(settings, {"ana": "approver", "terminal": "member"})
    shipyard.set_uri(str(home))
    for seed in (1, 2):
        shipyard.register_model("fraud", _fraud_model(seed), make_transactions(5, seed=9)[FEATURES])
    shipyard.set_uri(None)
    ring = KeyRing(home / "edge-keys")
    info = ring.create("release")
    trusted = load_public_keys(Path(info.public_path))
    first = _export_in_process(settings, ring.private("release"), 1, 1)
    server = TokenServer(home)
    try:
        # Team mode: measured and signed in the client, verified and kept by the server.
        client = rest_backend(Settings(uri=server.url, token=tokens["ana"]))
        try:
            target = EdgeTarget(name="terminal", max_size_mb=0.5, max_score_diff=0.05)
            _, kept = client.edge.export(
                "models:/fraud/2",
                target,
                make_transactions(3000, seed=52),
                LABEL,
                ring.private("release"),
            )
            assert kept is not None
            second = kept.id
            assert [b.id for b in client.edge.bundles()] == [second, first]
            assert client.edge.get_bundle(second).report["chosen"] == kept.variant
            stranger = KeyRing(tmp_path / "other").create("x")
            forged = client.edge.bundle_bytes(second)
            client.pipelines.blobs.put_chunks([forged])  # type: ignore[union-attr]
            with pytest.raises(InvalidInputError, match="not trusted here"):
                client.edge.client.json(  # type: ignore[attr-defined]
                    "POST",
                    "/api/v1/edge/bundles",
                    idempotent=False,
                    json={
                        "blob": hashlib.sha256(forged).hexdigest(),
                        "public_key": Path(stranger.public_path).read_text(),
                        "report": {},
                    },
                )
        finally:
            client.close()
        approver = {"Authorization": f"Bearer {tokens['ana']}", "Content-Type": "application/json"}

        def call(method: str, path: str, body: dict, headers: dict) -> tuple[int, dict]:
            request = urllib.request.Request(
                server.url + path, json.dumps(body).encode(), headers, method=method
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        member = {**approver, "Authorization": f"Bearer {tokens['terminal']}"}
        code, refused = call(
            "POST",
            "/api/v1/edge/rollouts",
            {"group": "lisbon", "bundle": first, "percent": 100},
            member,
        )
        assert code == 403 and "needs approver" in refused["error"]
        assert (
            call(
                "POST",
                "/api/v1/edge/rollouts",
                {"group": "lisbon", "bundle": first, "percent": 100},
                approver,
            )[0]
            == 201
        )
        code, rollout = call(
            "POST",
            "/api/v1/edge/rollouts",
            {"group": "lisbon", "bundle": second, "percent": 30},
            approver,
        )
        assert code == 201 and rollout["previous_bundle_id"] == first

        fleet = [
            Platform(server.url, f"t-{i:03d}", "lisbon", token=tokens["terminal"])
            for i in range(40)
        ]
        assigned = {p.device: p.checkin(None)["bundle"] for p in fleet}
        on_second = [d for d, b in assigned.items() if b == second]
        assert 4 <= len(on_second) <= 20 and set(assigned.values()) == {first, second}

        # One device of the new share fetches, verifies, predicts offline and syncs.
        device = next(p for p in fleet if p.device == on_second[0])
        path = device.fetch({"bundle": second, "sha256": None}, tmp_path / "running.zip", trusted)
        model = EdgeModel.open(path, trusted)
        buffer = TelemetryBuffer(tmp_path / "telemetry")
        rows = make_transactions(200, seed=77)[FEATURES].astype(object).to_dict("records")
        for start in range(0, 200, 20):
            batch = rows[start : start + 20]
            buffer.record(model, batch, model.predict(batch))
        offline = Platform("http://127.0.0.1:9", device.device, "lisbon", timeout=1)
        lost = offline.upload(buffer, bytes_per_second=1e9)
        assert not lost.reachable and lost.left == 10  # kept for later, nothing lost
        cap = 4000.0
        synced = device.upload(buffer, bytes_per_second=cap, batch_bytes=8 * 1024)
        assert synced.reachable and synced.records == 10 and synced.left == 0
        assert synced.bytes_sent / synced.seconds <= cap * 1.05
        assert device.checkin(model.bundle_id)["bundle"] == second
        # The same batch sent again (an acknowledgement lost on the way) is kept once.
        replayed = {
            "device": device.device,
            "group": "lisbon",
            "last_seq": 10,
            "records": [{"ts_ms": 1, "inputs": {}, "outputs": {"predict": [0]}}],
        }
        replay = gzip.compress(json.dumps(replayed).encode())
        request = urllib.request.Request(
            server.url + "/api/v1/edge/telemetry",
            replay,
            {**member, "Content-Encoding": "gzip"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["duplicate"] is True

        code, back = call(
            "POST",
            "/api/v1/edge/rollouts/lisbon/rollback",
            {"reason": "latency regression"},
            approver,
        )
        assert code == 200 and back["status"] == "rolled_back"
        others = [p for p in fleet if p.device != device.device][:10]
        assert {p.checkin(None)["bundle"] for p in others} == {first}
        assert device.checkin(model.bundle_id)["bundle"] == first  # told to go back
        with pytest.raises(PlatformUnreachableError, match=r"409|400|404"):
            Platform(server.url, "t-x", "lisbon", token=tokens["ana"])._request(
                "PUT",
                "/api/v1/edge/rollouts/lisbon",
                json.dumps({"percent": 50}).encode(),
                {"Content-Type": "application/json"},
            )
    finally:
        server.stop()
    # The server wrote the telemetry where monitors read deployments (closed at shutdown).
    logged = ParquetPredictionSource(settings.predlog_root).predictions(deployment_of("lisbon"))
    assert len(logged) == 200 and set(logged["version"]) == {"2"}
    assert {"input.amount", "input.country", "output.prediction", "output.proba_1"} <= set(logged)
    # Typed as the model server logs them (a bool as text read as drift in the demo).
    assert logged["input.card_present"].dtype == bool
    assert logged["input.amount"].dtype.kind == "f" and logged["input.country"].iloc[0] == "FR"
    backend = local_backend(settings)
    try:
        actions = [e.action for e in backend.governance.audit.events(action="edge.")]
        assert actions.count("edge.bundle.export") == 2
        assert "edge.rollout.rollback" in actions and "edge.device.bundle" in actions
        edges = backend.pipelines.store.edges_touching([f"edge-bundle:{second}"])  # type: ignore[union-attr]
        relations = {r for _, _, r in edges}
        assert {"exported_to", "rolled_out_to", "runs_on"} <= relations
        graph = json.loads(
            cli("lineage", "models:/fraud/2", "--json", env={"SHIPYARD_URI": str(home)}).stdout
        )
        arrows = {(e["source"], e["target"], e["relation"]) for e in graph["edges"]}
        assert ("model:fraud/2", f"edge-bundle:{second}", "exported_to") in arrows
        assert (f"edge-bundle:{second}", "edge-group:lisbon", "rolled_out_to") in arrows
        devices = {d.device: d for d in backend.edge.devices("lisbon")}
        assert devices[device.device].telemetry_rows == 200
        assert devices[device.device].bundle_id == second
    finally:
        backend.close()
