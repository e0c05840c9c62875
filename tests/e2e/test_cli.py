"""The CLI as a user drives it: tables, --json, and exit codes (0 ok, 2 input, 3 store)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard

pytestmark = pytest.mark.e2e


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
    )


@pytest.fixture
def seeded(tmp_path: Path) -> list[str]:
    shipyard.set_uri(str(tmp_path / ".shipyard"))
    ids = []
    for i, model in enumerate(["lgbm", "xgb"]):
        with shipyard.start_run(experiment="fraud", run_name=f"cand-{model}") as run:
            shipyard.log_param("model", model)
            shipyard.log_metric("auc", 0.9 + i / 100)
            shipyard.log_text("hello", "notes/readme.txt")
        ids.append(run.id)
    shipyard.set_uri(None)
    return ids


def test_listing_showing_and_comparing(seeded: list[str]) -> None:
    done = cli("experiments", "list", "--json")
    assert done.returncode == 0 and [e["name"] for e in json.loads(done.stdout)] == ["fraud"]
    done = cli("runs", "list", "-e", "fraud", "--filter", "params.model = 'xgb'", "--json")
    assert [r["name"] for r in json.loads(done.stdout)["runs"]] == ["cand-xgb"]
    done = cli("runs", "list", "--order-by", "metrics.auc DESC")
    assert done.returncode == 0 and done.stdout.index("cand-xgb") < done.stdout.index("cand-lgbm")
    shown = json.loads(cli("runs", "show", seeded[0], "--json").stdout)
    assert (
        shown["run"]["params"] == {"model": "lgbm"}
        and shown["artifacts"][0]["name"] == "notes/readme.txt"
    )
    compared = cli("runs", "compare", *seeded)
    assert compared.returncode == 0 and "auc" in compared.stdout and "0.91" in compared.stdout


def test_artifact_download_and_delete(seeded: list[str], tmp_path: Path) -> None:
    done = cli("artifacts", "get", seeded[0], "notes/readme.txt", "-o", str(tmp_path / "got.txt"))
    assert done.returncode == 0 and (tmp_path / "got.txt").read_text() == "hello"
    assert cli("runs", "delete", seeded[0], "--yes").returncode == 0
    assert cli("runs", "show", seeded[0]).returncode == 2
    assert [r["id"] for r in json.loads(cli("runs", "list", "--json").stdout)["runs"]] == [
        seeded[1]
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "show", "run_01m8j07665dv9xfct2x23tvv6b"),
        ("runs", "show", "not-a-run"),
        ("runs", "list", "--filter", "metrics.auc >"),
        ("runs", "list", "--filter", "metrics.auc > 0.9; DROP TABLE runs"),
        ("runs", "list", "--max-results", "0"),
        ("runs", "compare", "run_01m8j07665dv9xfct2x23tvv6b"),
        ("artifacts", "get", "run_01m8j07665dv9xfct2x23tvv6b", "../x"),
        ("runs", "nonsense"),
    ],
)
def test_bad_input_exits_2_with_one_line(seeded: list[str], args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert done.stderr.strip()
    assert len(json.loads(cli("runs", "list", "--json").stdout)["runs"]) == 2  # nothing lost


def test_unreachable_server_exits_3() -> None:
    done = cli("runs", "list", env={"SHIPYARD_URI": "http://127.0.0.1:9"})
    assert done.returncode == 3 and "cannot reach" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_demo_lifecycle_on_postgresql_and_s3(
    postgres_uri: str, s3_bucket: str, tmp_path: Path
) -> None:
    """The scale-out default: metadata in PostgreSQL, artifacts in an S3-compatible bucket
    (moto's server, reached through AWS_ENDPOINT_URL as AWS tools expect)."""
    import s3fs

    env = {
        "SHIPYARD_URI": postgres_uri,
        "SHIPYARD_ARTIFACTS": s3_bucket,
        "SHIPYARD_AUDIT_ANCHOR": str(tmp_path / "anchor" / "audit-anchor.json"),
    }
    done = cli("demo", "--rows", "20000", "--automl-budget", "6", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    # On 20,000 rows the champion is the logistic pipeline (a log1p FunctionTransformer on
    # one-hot text): edge export says why it cannot run on a terminal and ships nothing.
    assert "stays off the terminals: edge export takes numeric inputs" in done.stdout
    assert "7/7 steps from cache" in done.stdout and "holds champion" in done.stdout
    assert "retrained candidate fraud v3" in done.stdout
    blobs = s3fs.S3FileSystem(skip_instance_cache=True).find(s3_bucket.removeprefix("s3://"))
    assert len(blobs) > 20 and all("/sha256/" in b for b in blobs)
    checked = cli("db", "check", "--json", env=env)
    assert checked.returncode == 0, checked.stdout
    report = json.loads(checked.stdout)
    assert report["ok"] and report["missing"] == [] and report["blobs"] == len(blobs)


def test_db_upgrade_reports_the_revision(tmp_path: Path) -> None:
    first = cli("db", "upgrade")
    from shipyard.store.migrate import HEAD

    assert first.returncode == 0 and HEAD in first.stdout
    assert "already at" in cli("db", "upgrade").stdout


@pytest.mark.slow
def test_demo_runs_the_pipeline_then_reruns_it_from_cache() -> None:
    # 50,000 rows (the default): the boosting candidate becomes champion and goes to terminals.
    done = cli("demo", "--automl-budget", "8")
    assert done.returncode == 0, done.stderr
    assert "Candidates" in done.stdout
    assert "7/7 steps from cache" in done.stdout
    assert "team mode: a client of shipyard server" in done.stdout
    assert "7/7 steps from the server's cache" in done.stdout
    # Governance: both candidates gated, the author refused, a second approver promotes.
    assert "Gate reports" in done.stdout
    assert "ana approves her own model: refused" in done.stdout
    assert "separation of duties" in done.stdout
    assert "holds champion" in done.stdout and "audit chain intact" in done.stdout
    # Monitoring: the replayed shift is found, alerted to the webhook, and retrained.
    assert "Daily monitor" in done.stdout and "firing -> retraining prun_" in done.stdout
    assert "webhook receiver got 1 alert(s)" in done.stdout
    assert "retrained candidate fraud v3" in done.stdout
    # The project as code: applied, a hand edit found as drift (by rui), put back, exported.
    assert "7 added, 1 changed (2 unchanged), in one audited transaction" in done.stdout
    assert "drift: Monitor/fraud-daily changed by rui: quality.min_rows 500 -> 50" in done.stdout
    assert "alert spec-drift/config-drift firing" in done.stdout
    assert "drift gone, drift alert resolved" in done.stdout
    # AutoML within the model's governance: the spec's allowed estimators leave xgboost out.
    assert "AutoML leaderboard" in done.stdout
    assert "not searched: xgboost: not in the model's allowed estimators" in done.stdout
    assert re.search(r"AutoML candidate fraud v4 \(\w+, CV ROC AUC 0\.\d+", done.stdout)
    automl = json.loads(cli("models", "show", "models:/fraud/4", "--json").stdout)
    assert automl["tags"]["shipyard.automl.study"].startswith("automl-")
    assert "## Model search (AutoML)" in cli("models", "card", "fraud", "4").stdout
    # Edge: the champion exported under the spec's card-terminal budgets, signed, rolled out
    # in two stages to 24 terminals whose telemetry the platform logged.
    assert "Staged rollout to lisbon-terminals (24 terminals)" in done.stdout
    assert re.search(
        r"logged 960 terminal predictions as deployment edge-lisbon-terminals",
        done.stdout.replace("\n", " "),
    )
    status = json.loads(cli("edge", "rollout", "status", "lisbon-terminals", "--json").stdout)
    assert [r["percent"] for r in status["rollouts"]] == [100]
    assert len(status["devices"]) == 24
    assert {d["bundle_id"] for d in status["devices"]} == {status["rollouts"][0]["bundle_id"]}
    assert cli("edge", "verify", ".shipyard/edge/fraud-card-terminal.zip").returncode == 0
    assert "(exported_to)" in cli("lineage", "models:/fraud@champion").stdout
    # Lineage: the version, its search run, the split it searched on, the pipeline behind it.
    lineage = cli("lineage", "models:/fraud/4").stdout
    assert "(searched_on)" in lineage and "pipeline_run:prun_" in lineage
    assert cli("plan", "-f", ".shipyard/shipyard.yaml").returncode == 0
    assert cli("plan", "-f", ".shipyard/shipyard-export.yaml").returncode == 0
    verify = cli("audit", "verify", "--json")
    assert json.loads(verify.stdout)["ok"] is True
    assert json.loads(cli("models", "show", "fraud", "--json").stdout)["aliases"]["champion"]
    runs = json.loads(cli("runs", "list", "-e", "fraud_training", "--json", "-n", "100").stdout)[
        "runs"
    ]
    evaluations = [r for r in runs if r["name"].startswith("evaluate")]
    assert len(evaluations) == 2
    for run in evaluations:
        assert run["status"] == "FINISHED"
        assert 0.5 < run["metrics"]["val_roc_auc"] <= 1.0
    pipeline_runs = json.loads(cli("pipeline", "runs", "--json").stdout)
    # Three training runs (the second from cache, the third through the server, cached too)
    # and the retraining the alert started.
    assert sorted(r["pipeline"] for r in pipeline_runs) == [
        "fraud_retraining",
        "fraud_training",
        "fraud_training",
        "fraud_training",
    ]
    assert {r["status"] for r in pipeline_runs} == {"COMPLETED"}
