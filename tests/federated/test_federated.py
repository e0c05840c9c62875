"""Federated learning on Flower, in one process, tracked and governed: real Flower apps,
strategies, DP wrappers, SecAgg+ and accountant, a real SQLite store and registry.

Runs in .venv-federated (Flower pins FastAPI, Typer and others below Shipyard's own
environment); elsewhere it is skipped with that reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("flwr", reason="the federated extra runs in .venv-federated (make test)")

import shipyard.federated as fl
from shipyard.federated import flower, trainer
from shipyard.federated.privacy import epsilon
from shipyard.federated.synthetic import bank_silos

logging.getLogger("flwr").setLevel(logging.WARNING)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHIPYARD_URI", str(tmp_path / "store"))
    from shipyard.sdk import context

    context.replace(context.current().settings.__class__())
    return tmp_path


@pytest.fixture(scope="module")
def silos() -> dict[str, pd.DataFrame]:
    return bank_silos(24_000, 4, seed=7)


def _pooled_test(silos: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    parts = [trainer.split_silo(n, f, "default", 0.2, 0) for n, f in silos.items()]
    return (
        np.vstack([p.X_test for p in parts]),
        np.concatenate([p.y_test for p in parts]),
        parts[0].columns,
    )


def test_fedavg_matches_centralised_training_and_registers_a_governed_candidate(
    home: Path, silos: dict[str, pd.DataFrame]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shipyard.sdk import context

    result = fl.train(silos, fl.load_config({"label": "default", "rounds": 15}), register="credit")

    parts = [trainer.split_silo(n, f, "default", 0.2, 0) for n, f in silos.items()]
    central = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        np.vstack([p.X_train for p in parts]), np.concatenate([p.y_train for p in parts])
    )
    X, y, columns = _pooled_test(silos)
    central_auc = roc_auc_score(y, central.predict_proba(X)[:, 1])
    fed_auc = roc_auc_score(y, result.model.predict_proba(pd.DataFrame(X, columns=columns))[:, 1])
    assert abs(fed_auc - central_auc) < 0.005, (fed_auc, central_auc)

    backend = context.current().get_backend()
    rounds = [
        r
        for r in backend.tracking.search_runs("federated", max_results=1000)
        if r.parent_id == result.run_id
    ]
    assert sorted(int(r.params["round"]) for r in rounds) == list(range(1, 16))
    assert all(r.tags["shipyard.federated.trained"] == ",".join(sorted(silos)) for r in rounds)
    assert all("silo.bank-a.roc_auc" in r.metrics for r in rounds)
    history = backend.tracking.get_metric_history(result.run_id, "roc_auc")
    assert [m.step for m in history] == list(range(1, 16))

    mv = result.model_version
    assert mv.state.value == "candidate"
    fed = mv.card["model_parameters"]["federated"]
    for name, frame in silos.items():
        assert fed["silos"][name]["rows"] == len(frame)
        assert len(fed["silos"][name]["sha256"]) == 64
        assert 0.5 < fed["per_silo"][name]["roc_auc"] <= 1
    assert "Not differentially private" in fed["privacy_statement"]
    # A hash and an aggregate profile, never rows: no value of any silo's rows (its extremes
    # included) is in the card.
    card_text = json.dumps(mv.card)
    for name, frame in silos.items():
        profiled = fed["silos"][name]["profile"]["columns"]
        assert set(profiled["f00"]) == {"dtype", "nulls", "mean", "std"}
        for row in (
            frame.iloc[0],
            frame.loc[frame["f00"].idxmax()],
            frame.loc[frame["f00"].idxmin()],
        ):
            assert all(repr(float(v)) not in card_text for v in row.iloc[:-1])
    # The registered model loads and scores as the trained one.
    loaded, _ = backend.registry.load(mv.uri)
    scored = loaded.predict(pd.DataFrame(X[:5], columns=columns))
    assert np.asarray(scored).shape[0] == 5

    lineage = backend.pipelines.store.edges_touching([f"run:{result.run_id}"])
    data_nodes = {src for src, dst, rel in lineage if rel == "federated_training_data"}
    assert data_nodes == {f"dataset:silo/{n}@sha256:{fed['silos'][n]['sha256']}" for n in silos}


def test_fedprox_trains_with_the_proximal_term(home: Path, silos: dict[str, pd.DataFrame]) -> None:
    job = fl.load_config(
        {"label": "default", "rounds": 5, "strategy": "fedprox", "proximal_mu": 0.5}
    )
    result = fl.train(silos, job)
    assert result.report["job"]["proximal_mu"] == 0.5
    assert result.global_metrics["roc_auc"] > 0.7
    # mu pulls each silo toward the global weights: local models move less than FedAvg's.
    w = [np.zeros(12), np.zeros(1)]
    part = trainer.split_silo("x", silos["bank-a"], "default", 0.2, 0)
    free, held = (
        trainer.local_fit(
            w,
            part.X_train,
            part.y_train,
            epochs=1,
            batch_size=64,
            learning_rate=0.05,
            l2=0,
            proximal_mu=mu,
            seed=1,
        )[0]
        for mu in (0.0, 5.0)
    )
    assert np.linalg.norm(held[0]) < np.linalg.norm(free[0])


def test_central_dp_is_accounted_and_gated(home: Path, silos: dict[str, pd.DataFrame]) -> None:
    from shipyard.sdk import context

    job = fl.load_config(
        {
            "label": "default",
            "rounds": 6,
            "learning_rate": 0.1,
            "dp": {"mode": "central-server-fixed", "noise_multiplier": 2.0, "clipping_norm": 0.5},
        }
    )
    result = fl.train(silos, job, register="credit-dp")
    privacy = result.privacy
    assert privacy["releases"] == 6
    assert privacy["epsilon"] == pytest.approx(epsilon(2.0, 6, 4, 1e-5), abs=1e-4)
    assert 5 < privacy["epsilon"] < 10 and privacy["differentially_private"]
    card = result.model_version.card
    assert (
        "-differentially private per silo"
        in card["model_parameters"]["federated"]["privacy_statement"]
    )

    gates = context.current().get_backend().gates
    frame = pd.concat(silos.values()).head(500)
    strict = gates.evaluate(
        "credit-dp", 1, {"label": "default", "checks": [{"privacy": {"max_epsilon": 3}}]}, frame
    )
    loose = gates.evaluate(
        "credit-dp",
        1,
        {
            "label": "default",
            "checks": [{"privacy": {"max_epsilon": 10}}, {"silos": {"metric": "roc_auc"}}],
        },
        frame,
    )
    assert not strict.passed and "fails epsilon <= 3" in strict.checks[0].message
    assert loose.passed, [c.message for c in loose.checks]
    # DP noise costs accuracy (4 silos, noise std 0.25 per weight per round); the gate
    # report shows it silo by silo.
    per_silo = loose.checks[1].details["silos"]
    assert set(per_silo) == set(silos)
    assert all(0 <= m["roc_auc"] <= 1 and m["rows"] > 0 for m in per_silo.values())


def test_a_plan_above_max_epsilon_is_refused_or_labelled_not_dp(
    home: Path, silos: dict[str, pd.DataFrame]
) -> None:
    from shipyard.core.errors import InvalidInputError

    dp = {"noise_multiplier": 0.5, "clipping_norm": 1.0}
    with pytest.raises(InvalidInputError, match="above max_epsilon 10"):
        fl.train(silos, fl.load_config({"label": "default", "rounds": 5, "dp": dp}))
    labelled = fl.train(
        silos, fl.load_config({"label": "default", "rounds": 2, "dp": {**dp, "above_max": "label"}})
    )
    assert labelled.privacy["epsilon"] > 10
    assert not labelled.privacy["differentially_private"]
    assert labelled.report["privacy_statement"].startswith("Not called differentially private")


def test_secagg_plus_with_client_side_clipping(home: Path, silos: dict[str, pd.DataFrame]) -> None:
    plain = fl.train(silos, fl.load_config({"label": "default", "rounds": 3}))
    masked = fl.train(
        silos,
        fl.load_config({"label": "default", "rounds": 3, "secure_aggregation": {"num_shares": 3}}),
    )
    # SecAgg+ quantises the updates; the sum it reveals is the same model within that step.
    a = np.asarray(plain.report["global_weights"]["coef"])
    b = np.asarray(masked.report["global_weights"]["coef"])
    assert np.max(np.abs(a - b)) < 1e-3
    dp = fl.train(
        silos,
        fl.load_config(
            {
                "label": "default",
                "rounds": 3,
                "secure_aggregation": {},
                "dp": {
                    "mode": "central-client-fixed",
                    "noise_multiplier": 2.0,
                    "clipping_norm": 0.5,
                },
            }
        ),
    )
    assert dp.privacy["mode"] == "central-client-fixed" and dp.privacy["releases"] == 3


def test_a_silo_that_drops_out_mid_training_does_not_stop_it(
    home: Path, silos: dict[str, pd.DataFrame]
) -> None:
    def lose_bank_c(entry: dict[str, Any]) -> None:
        if entry["round"] == 2:  # bank-c's data goes away: its next answers are errors
            flower.IN_PROCESS.pop("bank-c", None)

    result = fl.train(
        silos,
        fl.load_config({"label": "default", "rounds": 4, "min_silos": 2}),
        on_round=lose_bank_c,
    )
    rounds = result.report["rounds"]
    assert len(rounds) == 4
    assert "bank-c" in rounds[1]["trained"] and "bank-c" not in rounds[2]["trained"]
    assert rounds[2]["fit_failures"] == 1 and len(rounds[3]["trained"]) == 3


def test_silos_with_different_columns_are_refused(
    home: Path, silos: dict[str, pd.DataFrame]
) -> None:
    from shipyard.core.errors import InvalidInputError

    odd = dict(silos)
    odd["bank-d"] = silos["bank-d"].rename(columns={"f00": "income"})
    with pytest.raises(InvalidInputError, match="the silos' columns differ"):
        fl.train(odd, fl.load_config({"label": "default", "rounds": 1}))


def test_cli_trains_registers_and_refuses_bad_input(
    home: Path, silos: dict[str, pd.DataFrame]
) -> None:
    import os
    import subprocess
    import sys

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SHIPYARD_URI": str(home / "store"), "NO_COLOR": "1"}
        return subprocess.run(
            [sys.executable, "-m", "shipyard", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    args = []
    for name, frame in silos.items():
        path = home / f"{name}.parquet"
        frame.to_parquet(path)
        args += ["--silo", f"{name}={path}"]
    (home / "job.yaml").write_text(
        "kind: FederatedJob\nspec:\n  label: default\n  rounds: 3\n  strategy: fedprox\n"
        "  proximal_mu: 0.01\n"
    )
    ok = cli(
        "federated",
        "run",
        *args,
        "--config",
        str(home / "job.yaml"),
        "--register",
        "credit",
        "--json",
    )
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["model_version"]["version"] == 1 and out["rounds"] == 3
    assert set(out["per_silo"]) == set(silos)

    bad = cli("federated", "run", "--silo", "nopath", "--label", "default")
    assert bad.returncode == 2 and "--silo takes NAME=PATH" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    bad = cli("federated", "run", *args, "--config", str(home / "job.yaml"), "--strategy", "fedavg")
    assert bad.returncode == 2 and "proximal_mu applies to fedprox" in bad.stderr
    shown = cli("federated", "run", *args, "--label", "default", "--rounds", "2")
    assert shown.returncode == 0, shown.stderr
    assert "Global model on each silo's held-out rows" in shown.stdout
    assert "Not differentially private" in shown.stdout


def test_the_run_page_charts_each_silo_by_round(home: Path, silos: dict[str, pd.DataFrame]) -> None:
    import httpx

    from tests.conftest import ServerProcess

    result = fl.train(silos, fl.load_config({"label": "default", "rounds": 4}))
    server = ServerProcess(home / "store")
    try:
        page = httpx.get(f"{server.url}/runs/{result.run_id}", timeout=30)
    finally:
        server.stop()
    assert page.status_code == 200
    html = page.text
    assert "Federated training: fedavg, 4 rounds" in html
    chart = json.loads(html.split('id="federated-rounds">')[1].split("</script>")[0])
    assert chart["x"] == [1.0, 2.0, 3.0, 4.0]
    assert {s["label"] for s in chart["series"]} == {"all silos", *silos}
    for name in silos:
        sha = result.report["silos"][name]["fingerprint"]["sha256"]
        assert f"dataset:silo/{name}@sha256:{sha}" in html


def test_a_dp_round_averaged_over_fewer_silos_is_accounted_with_its_weaker_noise() -> None:
    from shipyard.federated.config import DPConfig
    from shipyard.federated.privacy import Accounting

    dp = DPConfig(noise_multiplier=2.0, clipping_norm=1.0)
    full = Accounting(dp, 4).spent([4, 4, 4])
    short = Accounting(dp, 4).spent([4, 4, 2])
    # Flower's noise is calibrated to 4 silos; a mean of 2 has twice the sensitivity.
    assert short["effective_noise_multipliers"] == [1.0, 2.0]
    assert short["epsilon"] == pytest.approx(epsilon(2.0, [2.0, 2.0, 1.0], 4, 1e-5), abs=1e-4)
    assert short["epsilon"] > full["epsilon"] == pytest.approx(epsilon(2.0, 3, 4, 1e-5), abs=1e-4)


def test_a_job_through_a_server_records_and_registers_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, silos: dict[str, pd.DataFrame]
) -> None:
    """Team mode: the coordinator talks to a token-auth Shipyard server; the job's runs,
    report, lineage and governed candidate land on the server, as on an embedded store."""
    from shipyard.bootstrap import rest_backend
    from shipyard.core.settings import Settings
    from shipyard.sdk import context
    from tests.conftest import TokenServer

    server = TokenServer(tmp_path / "server-home")
    try:
        monkeypatch.setenv("SHIPYARD_URI", server.url)
        monkeypatch.setenv("SHIPYARD_TOKEN", server.token)
        context.replace(Settings())
        result = fl.train(
            silos, fl.load_config({"label": "default", "rounds": 3}), register="credit"
        )
        remote = rest_backend(Settings(uri=server.url, token=server.token))
        try:
            mv = remote.registry.get_version("credit", result.model_version.version)
            fed = mv.card["model_parameters"]["federated"]
            assert set(fed["silos"]) == set(silos) and fed["rounds"] == 3
            children = [
                r
                for r in remote.tracking.search_runs("federated", max_results=100)
                if r.parent_id == result.run_id
            ]
            assert sorted(int(r.params["round"]) for r in children) == [1, 2, 3]
            names = {a.name for a in remote.tracking.list_artifacts(result.run_id)}
            assert "federated/report.json" in names
            assert remote.pipelines is not None
            edges = remote.pipelines.store.edges_touching([f"run:{result.run_id}"])
            assert {src for src, _, rel in edges if rel == "federated_training_data"} == {
                f"dataset:silo/{n}@sha256:{fed['silos'][n]['sha256']}" for n in silos
            }
            loaded, _ = remote.registry.load(mv.uri)
            X, _, columns = _pooled_test(silos)
            assert np.asarray(loaded.predict(pd.DataFrame(X[:5], columns=columns))).shape == (5,)
        finally:
            remote.close()
    finally:
        context.replace(Settings(uri=str(tmp_path / "after")))
        server.stop()
