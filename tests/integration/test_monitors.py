"""Monitors over prediction-log windows: drift, quality, performance with delayed labels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.monitoring.spec import load_monitor, parse_monitor
from shipyard.predlog.writer import ParquetPredictionLog
from shipyard.serving.ports import PredictionRecord
from tests.e2e.test_cli import cli
from tests.integration.test_gates import FAIR, make_data

BASE = datetime(2026, 11, 20, tzinfo=UTC)
SPEC = {
    "kind": "Monitor",
    "name": "credit-watch",
    "deployment": "credit-live",
    "model": "models:/credit/1",
    "features": FAIR,
    "window": {"every": "1h"},
    "quality": {"min_rows": 100},
    "performance": {
        "metrics": {"roc_auc": {"min": 0.7}, "calibration_error": {"max": 0.2}},
        "min_labels": 100,
        "sensitive": "group",
    },
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """credit v1 registered; three hours of logged traffic, the third one shifted."""
    store = tmp_path / "store"
    monkeypatch.setenv("SHIPYARD_PREDLOG", str(store / "predictions"))
    shipyard.set_uri(str(store))
    train = make_data(4000, 1)
    model = LogisticRegression().fit(train[FAIR], train["label"])
    shipyard.register_model("credit", model, train[FAIR][:5], training_data=train[FAIR])
    log = ParquetPredictionLog(store / "predictions")
    labels = []
    for hour in range(3):
        data = make_data(600, 10 + hour, shift=2.0 if hour == 2 else 0.0)
        proba = model.predict_proba(data[FAIR])
        for i, start in enumerate(range(0, 600, 50)):
            part = data.iloc[start : start + 50]
            request = f"h{hour}-r{i}"
            log.submit(
                PredictionRecord(
                    "credit-live",
                    "credit",
                    "1",
                    "primary",
                    request,
                    int((BASE + timedelta(hours=hour, minutes=i)).timestamp() * 1000),
                    0.002 + i / 1e4,
                    {c: part[c].to_numpy() for c in [*FAIR, "group"]},
                    {
                        "prediction": (proba[start : start + 50, 1] >= 0.5).astype(int),
                        "proba_1": proba[start : start + 50, 1],
                    },
                    len(part),
                )
            )
            if hour != 1:  # labels arrive for the first and the third hour only
                labels += [
                    {"request_id": request, "row": r, "label": int(v)}
                    for r, v in enumerate(part["label"])
                ]
    log.close()
    assert shipyard.log_feedback("credit-live", labels).accepted == len(labels)
    yield store
    shipyard.set_uri(None)


def test_windows_judge_quality_drift_and_labelled_performance(home: Path) -> None:
    monitors = shipyard.sdk.context.current().get_backend().monitors
    spec = parse_monitor(SPEC)
    calm = monitors.run(spec, BASE, BASE + timedelta(hours=1))
    assert calm["status"] == "ok", [c for c in calm["checks"] if c["status"] == "failed"]
    assert calm["rows"] == 600 and calm["requests"] == 12
    assert calm["performance"]["labels"] == 600 and calm["performance"]["metrics"]["roc_auc"] > 0.7
    assert {g["group"] for g in calm["performance"]["fairness"]["groups"]} == {"A", "B"}
    assert calm["health"]["latency_p99"] >= calm["health"]["latency_p50"] > 0
    assert not calm["drift"]["dataset_drift"]

    unlabelled = monitors.run(spec, BASE + timedelta(hours=1), BASE + timedelta(hours=2))
    assert unlabelled["status"] == "ok" and "no labels" in unlabelled["performance"]["message"]

    shifted = monitors.run(spec, BASE + timedelta(hours=2), BASE + timedelta(hours=3))
    assert shifted["status"] == "alert"
    failed = {c["name"] for c in shifted["checks"] if c["status"] == "failed"}
    assert {"score_drift", "out_of_range"} <= failed
    assert "x0" in shifted["drift"]["drifted_columns"]
    assert shifted["drift"]["score"]["psi"] > 0.25

    empty = monitors.run(spec, BASE + timedelta(hours=5), BASE + timedelta(hours=6))
    assert empty["status"] == "no_data" and "no traffic" in empty["message"]

    again = monitors.run(spec, BASE, BASE + timedelta(hours=1))  # idempotent
    assert again == calm
    history = monitors.history("credit-watch")
    assert [h["status"] for h in history] == ["ok", "ok", "alert", "no_data"]


def test_bad_monitors_are_clear(home: Path, tmp_path: Path) -> None:
    monitors = shipyard.sdk.context.current().get_backend().monitors
    with pytest.raises(InvalidInputError, match=r"window\.every"):
        parse_monitor({**SPEC, "window": {"every": "often"}})
    with pytest.raises(InvalidInputError, match="unknown metric 'auc'"):
        parse_monitor({**SPEC, "performance": {"metrics": {"auc": {"min": 1}}}})
    with pytest.raises(InvalidInputError, match="end after it starts"):
        monitors.run(parse_monitor(SPEC), BASE, BASE)
    with pytest.raises(InvalidInputError, match="needs the monitor's model"):
        monitors.run(parse_monitor({**SPEC, "model": None}), BASE, BASE + timedelta(hours=1))
    with pytest.raises(NotFoundError, match="no results yet"):
        monitors.history("never-ran")
    (tmp_path / "bad.yaml").write_text("kind: Monitor\nname: [")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        load_monitor(tmp_path / "bad.yaml")


def test_monitor_cli_runs_windows_and_prints_history(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "monitor.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    env = {"SHIPYARD_URI": str(home), "SHIPYARD_PREDLOG": str(home / "predictions")}
    at = (BASE + timedelta(hours=2, minutes=30)).isoformat()
    out = cli("monitor", "run", str(spec), "--at", at, "--windows", "3", "--json", env=env)
    assert out.returncode == 1, out.stderr  # the third hour raises an alert
    statuses = [r["status"] for r in json.loads(out.stdout)["results"]]
    assert statuses == ["ok", "ok", "alert"]
    shown = json.loads(cli("monitor", "history", "credit-watch", "--json", env=env).stdout)
    assert [r["window_start"] for r in shown["results"]] == [
        (BASE + timedelta(hours=h)).isoformat() for h in range(3)
    ]
    assert np.isfinite(shown["results"][0]["health"]["requests_per_second"])
    page = tmp_path / "report.html"
    made = cli("monitor", "report", "credit-watch", "--html", str(page), env=env)
    assert made.returncode == 0, made.stderr
    html = page.read_text()
    assert html.count("<svg") >= 4 + 3 and "x0" in html and "drift" in html
    assert "<script" not in html


def test_the_server_exports_monitor_results_to_prometheus(home: Path) -> None:
    from tests.conftest import ServerProcess

    monitors = shipyard.sdk.context.current().get_backend().monitors
    spec = parse_monitor(SPEC)
    monitors.run(spec, BASE, BASE + timedelta(hours=1))
    monitors.run(spec, BASE + timedelta(hours=2), BASE + timedelta(hours=3))
    server = ServerProcess(home, {"SHIPYARD_PREDLOG": str(home / "predictions")})
    try:
        text = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    key = (
        ("feature", "x0"),
        ("method", "wasserstein"),
        ("model", "credit-live"),
        ("monitor", "credit-watch"),
    )
    assert samples[("shipyard_feature_drift_detected", key)] == 1.0
    assert samples[("shipyard_feature_drift_score", key)] > 0.1
    assert (
        samples[
            ("shipyard_monitor_status", (("model", "credit-live"), ("monitor", "credit-watch")))
        ]
        == 1.0
    )
    assert any(name == "shipyard_model_performance" for name, _ in samples)
    # Latency is a summary (quantile, _count, _sum), as Prometheus types the quantile label.
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["shipyard_monitor_latency_seconds"] == "summary"
    where = (("model", "credit-live"), ("monitor", "credit-watch"))
    assert samples[("shipyard_monitor_latency_seconds_count", where)] > 0
    assert samples[("shipyard_monitor_latency_seconds_sum", where)] > 0
    p99 = samples[("shipyard_monitor_latency_seconds", (*where, ("quantile", "0.99")))]
    assert p99 >= samples[("shipyard_monitor_latency_seconds", (*where, ("quantile", "0.5")))]


def test_a_past_window_or_the_last_n_predictions_can_be_the_reference_and_window(
    home: Path,
) -> None:
    monitors = shipyard.sdk.context.current().get_backend().monitors
    past = parse_monitor(
        {
            **SPEC,
            "name": "vs-monday",
            "model": None,
            "performance": None,
            "reference": {
                "kind": "window",
                "start": BASE.isoformat(),
                "end": (BASE + timedelta(hours=1)).isoformat(),
            },
        }
    )
    calm = monitors.run(past, BASE + timedelta(hours=1), BASE + timedelta(hours=2))
    assert calm["status"] == "ok", calm["checks"]
    moved = monitors.run(past, BASE + timedelta(hours=2), BASE + timedelta(hours=3))
    assert "x0" in moved["drift"]["drifted_columns"]
    assert moved["drift"]["score"]["drifted"]  # the logged scores are the reference's scores
    latest = parse_monitor({**SPEC, "name": "last-600", "window": {"rows": 600}})
    first = monitors.run_latest(latest, BASE + timedelta(hours=3))
    again = monitors.run_latest(latest, BASE + timedelta(hours=3))
    assert first["rows"] == 600 and first["status"] == "alert"
    assert first["window_start"] == again["window_start"] == (BASE + timedelta(hours=2)).isoformat()
    with pytest.raises(InvalidInputError, match="start < end"):
        parse_monitor(
            {
                **SPEC,
                "reference": {"kind": "window", "start": BASE.isoformat(), "end": BASE.isoformat()},
            }
        )


def test_constant_all_null_and_unseen_columns_in_production(home: Path, tmp_path: Path) -> None:
    import pandas as pd

    reference = pd.DataFrame(
        {"k": [1.0] * 500, "n": np.linspace(0, 1, 500), "channel": ["web", "app"] * 250}
    )
    reference.to_parquet(tmp_path / "ref.parquet")
    log = ParquetPredictionLog(home / "predictions")
    rows = 300
    log.submit(
        PredictionRecord(
            "odd",
            "odd",
            "1",
            "primary",
            "odd-1",
            int(BASE.timestamp() * 1000),
            0.001,
            {
                "k": np.ones(rows),
                "n": np.full(rows, np.nan),
                "channel": np.array(["web", "kiosk", "app"] * 100, dtype=object),
            },
            {"prediction": np.zeros(rows, dtype=int)},
            rows,
        )
    )
    log.close()
    monitors = shipyard.sdk.context.current().get_backend().monitors
    spec = parse_monitor(
        {
            "name": "odd",
            "deployment": "odd",
            "performance": None,
            "reference": {"kind": "file", "path": str(tmp_path / "ref.parquet")},
        }
    )
    result = monitors.run(spec, BASE, BASE + timedelta(hours=1))
    checks = {c["name"]: c for c in result["checks"]}
    assert (
        checks["null_rate"]["status"] == "failed" and "n 100.00%" in checks["null_rate"]["message"]
    )
    assert checks["unseen_categories"]["status"] == "failed"
    assert "kiosk" in checks["unseen_categories"]["message"]
    columns = {c["column"]: c for c in result["drift"]["columns"]}
    assert not columns["k"]["drifted"]  # constant in both: no drift, no crash
    assert columns["n"]["note"] == "no non-null values in the current data"
    assert columns["channel"]["drifted"]


def test_the_scheduler_runs_a_monitor_every_window(home: Path, tmp_path: Path) -> None:
    from shipyard.sdk.scheduling import add_schedule, schedule_store, scheduler

    spec = tmp_path / "monitor.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    add_schedule(
        "watch-credit",
        "shipyard.sdk.monitor_pipeline:watch",
        cron="0 * * * *",
        params={"spec": str(spec)},
    )
    store = schedule_store()
    saved = store.get_schedule("watch-credit")
    store.delete_schedule("watch-credit")
    top = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    created = int((top - timedelta(minutes=30)).timestamp() * 1000)
    store.save_schedule(
        type(saved)(
            saved.name, saved.target, saved.cron, saved.timezone, saved.params, True, created
        )
    )
    ticks = scheduler().run_pending()
    assert [t.status.value for t in ticks] == ["COMPLETED"]
    history = shipyard.sdk.context.current().get_backend().monitors.history("credit-watch")
    # The last complete hour had no traffic: a clear no_data result, not an error.
    assert history[-1]["status"] == "no_data"
    assert history[-1]["window_end"] == top.isoformat()


def test_error_rate_is_per_window_from_the_failed_requests_logged(
    tmp_path: Path, seed: int
) -> None:
    """Each window's error rate counts that window's failed requests: re-running a window
    gives the same figure, and a window where every request failed is an alert, not
    "no traffic" (before, the rate was the counters' change since the last evaluation)."""
    import time

    import pandas as pd
    from sklearn.datasets import make_classification

    from shipyard.predlog.reader import read_log
    from tests.integration.test_model_server import COLS, ModelServer

    store = tmp_path / "store"
    shipyard.set_uri(str(store))
    X, y = make_classification(300, 5, random_state=seed)
    frame = pd.DataFrame(X, columns=COLS)
    shipyard.register_model("m", LogisticRegression().fit(frame, y), frame[:5], training_data=frame)
    srv = ModelServer(store, "models:/m/1", "--name", "m-live", "--replay")
    spec = parse_monitor(
        {
            "name": "m-health",
            "deployment": "m-live",
            "model": "models:/m/1",
            "health": {
                "metrics_url": f"{srv.url}/metrics",
                "max_error_rate": 0.1,
                "max_latency_p99": 5.0,
            },
        }
    )
    monitors = shipyard.sdk.context.current().get_backend().monitors

    def send(good: int, bad: int, minute: int) -> None:
        when = {"x-shipyard-event-time": (BASE + timedelta(minutes=minute)).isoformat()}
        for i in range(good):
            assert (
                httpx.post(
                    f"{srv.url}/invocations",
                    json={"dataframe_split": {"columns": COLS, "data": [X[i].tolist()]}},
                    headers=when,
                ).status_code
                == 200
            )
        for _ in range(bad):
            assert (
                httpx.post(
                    f"{srv.url}/invocations", json={"instances": [[1.0]]}, headers=when
                ).status_code
                == 400
            )

    def logged(failed: bool = False) -> int:
        try:
            table = read_log(store / "predictions", deployment="m-live", failed=failed)
            return int(table.num_rows)
        except Exception:  # noqa: BLE001 - not written yet
            return 0

    def wait_for(rows: int, failed: int) -> None:
        deadline = time.monotonic() + 20  # a past hour's file is closed within seconds
        while (logged() < rows or logged(True) < failed) and time.monotonic() < deadline:
            time.sleep(0.3)

    def window(hour: int) -> dict[str, Any]:
        start = BASE + timedelta(hours=hour)
        return monitors.run(spec, start, start + timedelta(hours=1))

    try:
        send(8, 2, 10)  # hour 0: 2 of 10 fail
        send(10, 0, 70)  # hour 1: none fail
        send(0, 3, 130)  # hour 2: every request fails
        wait_for(18, 5)
        first = {c["name"]: c for c in window(0)["checks"]}
        assert first["error_rate"]["status"] == "failed" and first["error_rate"]["value"] == 0.2
        assert "2 of 10 requests failed in this window (2 x 400)" in first["error_rate"]["message"]
        assert first["latency_p99"]["status"] == "passed"
        second = {c["name"]: c for c in window(1)["checks"]}
        assert second["error_rate"]["status"] == "passed" and second["error_rate"]["value"] == 0
        again = {c["name"]: c for c in window(0)["checks"]}
        assert again["error_rate"]["value"] == 0.2  # the same window, the same answer
        broken = window(2)
        assert broken["status"] == "alert" and broken["failed_requests"] == 3
        assert {c["name"]: c for c in broken["checks"]}["error_rate"]["value"] == 1.0
        assert window(3)["status"] == "no_data"
    finally:
        srv.stop()
        shipyard.set_uri(None)
