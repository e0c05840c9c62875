"""The runs table in a real browser: Shipyard's UI against MLflow's, on the same runs.

For 1,000 / 10,000 / 100,000 runs (5 params, 5 metrics each) both stores get the same runs,
bulk-inserted into each tool's own tables (not timed). Each UI is served on 127.0.0.1
(`shipyard ui`, `mlflow server`) and opened in headless Chromium (Debian's, through
Playwright). Timed, from navigation to the rows on screen (best of 3, fresh page each):
first rows of the experiment's runs table, and the table sorted by a metric. Then the time
to render a 1,000-step metric chart on a run's page, and how many points each UI drew.

    .venv-bench/bin/python bench/ui.py [--runs 1000 10000 100000] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import BIN, free_port, report, start, stop

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PARAMS, METRICS, CURVE = 5, 5, 1000


def dataset(n: int, seed: int = 7) -> list[tuple[str, dict[str, str], dict[str, float]]]:
    rng = random.Random(seed)
    return [
        (
            f"r{i:06d}",
            {f"p{j}": rng.choice("abcd") for j in range(PARAMS)},
            {f"m{j}": rng.random() for j in range(METRICS)},
        )
        for i in range(n)
    ]


def load_shipyard(home: Path, data: list[Any]) -> tuple[str, str]:
    """Bulk rows into Shipyard's own tables (its service is what the UI reads)."""
    import sqlalchemy as sa

    from shipyard.bootstrap import local_backend
    from shipyard.core.ids import new_id
    from shipyard.core.settings import Settings
    from shipyard.store import schema as t
    from shipyard.store.points import POINT
    from shipyard.tracking.models import Metric

    backend = local_backend(Settings(uri=str(home)))
    exp = backend.tracking.get_or_create_experiment("bench")
    curve_run = backend.tracking.create_run(exp.id, name="curve")
    backend.tracking.log_batch(
        curve_run.id, [Metric("loss", 1 / (s + 1), s, 1) for s in range(CURVE)], {}
    )
    backend.tracking.end_run(curve_run.id)
    engine = sa.create_engine(backend.uri)
    now = int(time.time() * 1000)
    runs, params, latest, tags = [], [], [], []
    for i, (name, ps, ms) in enumerate(data):
        run_id = new_id("run")
        tags.append({"run_id": run_id, "key": "shipyard.user", "value": "bench"})
        runs.append(
            {
                "id": run_id,
                "experiment_id": exp.id,
                "name": name,
                "status": "FINISHED",
                "start_time": now - i,
                "end_time": now - i,
            }
        )
        params += [{"run_id": run_id, "key": k, "value": v} for k, v in ps.items()]
        latest += [
            {"run_id": run_id, "key": k, "value": v, "is_nan": False, "step": 0, "timestamp": now}
            for k, v in ms.items()
        ]
    with engine.begin() as conn:
        conn.execute(sa.insert(t.runs), runs)
        conn.execute(sa.insert(t.params), params)
        conn.execute(sa.insert(t.tags), tags)
        conn.execute(
            sa.insert(t.metric_chunks),
            [
                {
                    "run_id": m["run_id"],
                    "key": m["key"],
                    "points": 1,
                    "data": POINT.pack(m["step"], m["timestamp"], m["value"]),
                }
                for m in latest
            ],
        )
        conn.execute(sa.insert(t.latest_metrics), latest)
    engine.dispose()
    backend.close()
    return exp.id, curve_run.id


def load_mlflow(uri: str, data: list[Any]) -> tuple[str, str]:
    """Bulk rows into MLflow's tables through its SQLAlchemy models' tables."""
    import mlflow
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, str(Path(tempfile.mkdtemp()) / "mlruns"))
    exp_id = store.create_experiment("bench", tags=None)
    client_tags = {"mlflow.experimentKind": "custom_model_development"}
    client = mlflow.MlflowClient(tracking_uri=uri)
    for key, value in client_tags.items():  # the classic "model training" experiment view
        client.set_experiment_tag(exp_id, key, value)
    curve = client.create_run(exp_id, run_name="curve")
    from mlflow.entities import Metric as MlMetric

    for start_at in range(0, CURVE, 500):
        client.log_batch(
            curve.info.run_id,
            [
                MlMetric("loss", 1 / (s + 1), 1, s)
                for s in range(start_at, min(CURVE, start_at + 500))
            ],
        )
    client.set_terminated(curve.info.run_id)
    now = int(time.time() * 1000)
    runs, params, metrics, tags = [], [], [], []
    for i, (name, ps, ms) in enumerate(data):
        run_id = uuid.uuid4().hex
        tags += [
            {"key": "mlflow.runName", "value": name, "run_uuid": run_id},
            {"key": "mlflow.user", "value": "bench", "run_uuid": run_id},
        ]
        runs.append(
            {
                "run_uuid": run_id,
                "name": name,
                "source_type": "LOCAL",
                "source_name": "",
                "entry_point_name": "",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": now - i,
                "end_time": now - i,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": "",
                "experiment_id": int(exp_id),
            }
        )
        params += [{"key": k, "value": v, "run_uuid": run_id} for k, v in ps.items()]
        metrics += [
            {"key": k, "value": v, "timestamp": now, "step": 0, "is_nan": False, "run_uuid": run_id}
            for k, v in ms.items()
        ]
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sa.insert(SqlRun.__table__), runs)
        conn.execute(sa.insert(SqlParam.__table__), params)
        conn.execute(sa.insert(SqlTag.__table__), tags)
        conn.execute(sa.insert(SqlMetric.__table__), metrics)
        conn.execute(sa.insert(SqlLatestMetric.__table__), metrics)
    engine.dispose()
    return exp_id, curve.info.run_id


def timed(browser: Any, url: str, ready: str, repeat: int = 3, timeout: float = 120_000) -> float:
    """Best time (ms) from navigation to ``ready`` visible, each try in a fresh page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    best = float("inf")
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        started = time.perf_counter()
        try:
            page.goto(url, wait_until="commit", timeout=timeout)
            page.locator(ready).first.wait_for(state="visible", timeout=timeout)
        except PlaywrightTimeout:
            page.close()
            return float("inf")  # reported as "more than the limit"; no point trying again
        best = min(best, (time.perf_counter() - started) * 1000)
        page.close()
    return best


def shown(ms: float) -> str:
    """A time for the table; a timed-out wait reads as more than the limit."""
    return "> 120,000 ms (timed out)" if ms == float("inf") else f"{ms:,.0f} ms"


def drawn_points(browser: Any, url: str, ready: str, probe: str) -> tuple[float, int]:
    """Time (ms) until the chart is drawn, and the points it holds."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(ready).first.wait_for(state="visible", timeout=120_000)
    ms = (time.perf_counter() - started) * 1000
    points = int(page.evaluate(probe) or 0)
    page.close()
    return ms, points


def measure(
    browser: Any,
    n: int,
    tool: str,
    server: Any,
    *,
    first: tuple[str, str],
    by_metric: tuple[str, str],
    chart: tuple[str, str, str],
) -> dict[str, Any]:
    """One tool's three figures (first rows, sorted rows, the chart), then stop its server."""
    try:
        first_ms = timed(browser, *first)
        sorted_ms = timed(browser, *by_metric)
        chart_ms, chart_points = drawn_points(browser, *chart)
    finally:
        stop(server)
    row = {
        "runs": n,
        "tool": tool,
        "first_rows_ms": first_ms,
        "sorted_ms": sorted_ms,
        "chart_ms": chart_ms,
        "chart_points": chart_points,
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--no-mlflow", action="store_true", help="time Shipyard alone")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for n in args.runs:
            tmp = Path(tempfile.mkdtemp(prefix=f"shipyard-ui-{n}-"))
            data = dataset(n)
            top = max(data, key=lambda d: d[2]["m1"])[0]  # what a sort by m1 puts first
            _, curve_id = load_shipyard(tmp / "shipyard", data)
            port = free_port()
            ours = start(
                [str(BIN / "shipyard"), "--uri", str(tmp / "shipyard"), "ui", "--port", str(port)],
                f"http://127.0.0.1:{port}/health",
            )
            base = f"http://127.0.0.1:{port}"
            row = measure(
                browser,
                n,
                "shipyard",
                ours,
                first=(f"{base}/runs?experiment=bench", "#runs-table tbody tr td a"),
                by_metric=(
                    f"{base}/runs?experiment=bench&order=metrics.m1+DESC",
                    f"#runs-table tbody tr:first-child td a:text-is('{top}')",
                ),
                chart=(
                    f"{base}/runs/{curve_id}",
                    "[data-chart][data-drawn] canvas",
                    "document.querySelector('[data-chart]').getAttribute('data-drawn')",
                ),
            )
            rows.append(row)
            if args.no_mlflow:
                continue
            uri = f"sqlite:///{tmp / 'mlflow.db'}"
            ml_exp, ml_curve = load_mlflow(uri, data)
            port = free_port()
            theirs = start(
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--backend-store-uri",
                    uri,
                    "--workers",
                    "1",
                ],
                f"http://127.0.0.1:{port}/health",
                timeout=180,
            )
            base = f"http://127.0.0.1:{port}"
            rows.append(
                measure(
                    browser,
                    n,
                    "mlflow",
                    theirs,
                    first=(
                        f"{base}/#/experiments/{ml_exp}/runs",
                        "[role=gridcell] a[href*='/runs/']",
                    ),
                    by_metric=(
                        f"{base}/#/experiments/{ml_exp}/runs?orderByKey=metrics.%60m1%60&orderByAsc=false",
                        f".ag-row[row-index='0'] a:has-text('{top}')",
                    ),
                    chart=(
                        f"{base}/#/experiments/{ml_exp}/runs/{ml_curve}/model-metrics",
                        ".js-plotly-plot .scatterlayer .trace path",
                        "(() => { const d = document.querySelector('.js-plotly-plot');"
                        " return d && d.data ? Math.max(...d.data.map(t => (t.x || []).length)) : 0; })()",
                    ),
                )
            )
        browser.close()
    lines = []
    for n in args.runs:
        ours = next(r for r in rows if r["runs"] == n and r["tool"] == "shipyard")
        theirs = next((r for r in rows if r["runs"] == n and r["tool"] == "mlflow"), None)
        for key, label in (
            ("first_rows_ms", "first rows"),
            ("sorted_ms", "sorted by a metric"),
            ("chart_ms", "1,000-step chart"),
        ):
            value = f"shipyard {shown(ours[key])}"
            if theirs is not None:
                ratio = theirs[key] / ours[key]
                value += f", mlflow {shown(theirs[key])}" + (
                    f" ({ratio:.1f}x)" if ratio != float("inf") else ""
                )
            lines.append((f"{n:,} runs: {label}", value))
        points = f"shipyard {ours['chart_points']}"
        if theirs is not None:
            points += f", mlflow {theirs['chart_points']}"
        lines.append((f"{n:,} runs: chart points drawn of {CURVE:,}", points))
    report("UI in headless Chromium (best of 3; ratio = MLflow time / Shipyard time)", lines)


if __name__ == "__main__":
    main()
