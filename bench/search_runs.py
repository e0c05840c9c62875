"""Run search over 10,000 runs (10 params, 10 metrics each): Shipyard against MLflow.

Both stores get the same runs (loaded in bulk through each tool's own store layer, which is
not what is timed); then each runs the same search, a filter on a metric and a param with
an order on another metric, and the time to the first page of 100 is measured (best of 5).

    .venv-bench/bin/python bench/search_runs.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path

from _common import BIN, free_port, report, start, stop

FILTER = "metrics.m0 > 0.5 and params.p0 = 'a'"
ORDER = ["metrics.m1 DESC"]


def dataset(n: int, seed: int = 7) -> list[tuple[dict[str, str], dict[str, float]]]:
    rng = random.Random(seed)
    return [
        (
            {f"p{j}": rng.choice("abcd") for j in range(10)},
            {f"m{j}": rng.random() for j in range(10)},
        )
        for _ in range(n)
    ]


def load_shipyard(uri: str, data: list[tuple[dict[str, str], dict[str, float]]]) -> None:
    from shipyard.bootstrap import local_backend
    from shipyard.core.settings import Settings
    from shipyard.tracking.models import Metric

    backend = local_backend(Settings(uri=uri))
    svc = backend.tracking
    exp = svc.get_or_create_experiment("search")
    for params, metrics in data:
        run = svc.create_run(exp.id, name="r")
        svc.log_batch(run.id, [Metric(k, v, 0, 1) for k, v in metrics.items()], params)
        svc.end_run(run.id)
    backend.close()


def load_mlflow(uri: str, data: list[tuple[dict[str, str], dict[str, float]]]) -> str:
    """Bulk insert through MLflow's own SQLAlchemy models (its API would take minutes)."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, str(Path(tempfile.mkdtemp()) / "mlruns"))
    exp_id = store.create_experiment("search")
    now = int(time.time() * 1000)
    with store.ManagedSessionMaker() as session:
        for i, (params, metrics) in enumerate(data):
            run_id = uuid.uuid4().hex
            session.add(
                SqlRun(
                    run_uuid=run_id,
                    name="r",
                    source_type="LOCAL",
                    source_name="",
                    entry_point_name="",
                    user_id="bench",
                    status="FINISHED",
                    start_time=now + i,
                    end_time=now + i,
                    source_version="",
                    lifecycle_stage="active",
                    artifact_uri="",
                    experiment_id=int(exp_id),
                )
            )
            session.add_all([SqlParam(key=k, value=v, run_uuid=run_id) for k, v in params.items()])
            for k, v in metrics.items():
                session.add(
                    SqlMetric(key=k, value=v, timestamp=now, step=0, is_nan=False, run_uuid=run_id)
                )
                session.add(
                    SqlLatestMetric(
                        key=k, value=v, timestamp=now, step=0, is_nan=False, run_uuid=run_id
                    )
                )
    return exp_id


def best_of(fn, repeat: int = 5) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-search-"))
    data = dataset(args.runs)

    t0 = time.perf_counter()
    load_shipyard(str(tmp / "shipyard"), data)
    t1 = time.perf_counter()
    mlflow_uri = f"sqlite:///{tmp / 'mlflow.db'}"
    exp_id = load_mlflow(mlflow_uri, data)
    t2 = time.perf_counter()
    print(
        f"loaded {args.runs:,} runs: shipyard {t1 - t0:.1f}s (through its service), "
        f"mlflow {t2 - t1:.1f}s (bulk ORM)"
    )

    import mlflow

    import shipyard

    shipyard.set_uri(str(tmp / "shipyard"))
    ours_ms, ours_n = best_of(
        lambda: len(shipyard.search_runs("search", FILTER, ORDER, max_results=100).runs)
    )
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    theirs_ms, theirs_n = best_of(
        lambda: len(client.search_runs([exp_id], FILTER, order_by=ORDER, max_results=100))
    )
    assert ours_n == theirs_n == 100, (ours_n, theirs_n)
    expected = sorted(
        (m for p, m in data if m["m0"] > 0.5 and p["p0"] == "a"), key=lambda m: -m["m1"]
    )[:100]
    got = [
        r.metrics["m1"] for r in shipyard.search_runs("search", FILTER, ORDER, max_results=100).runs
    ]
    assert got == [m["m1"] for m in expected], "shipyard returned the wrong page"

    port = free_port()
    server = start(
        [str(BIN / "shipyard"), "server", "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        env={"SHIPYARD_URI": str(tmp / "shipyard")},
    )
    try:
        shipyard.set_uri(f"http://127.0.0.1:{port}")
        rest_ms, _ = best_of(
            lambda: len(shipyard.search_runs("search", FILTER, ORDER, max_results=100).runs)
        )
    finally:
        stop(server)
    matches = sum(1 for p, m in data if m["m0"] > 0.5 and p["p0"] == "a")
    report(
        f"search_runs over {args.runs:,} runs, filter {FILTER!r}, order {ORDER}, first page of 100 "
        f"({matches:,} match), best of 5",
        [
            ("shipyard SDK, embedded SQLite", f"{ours_ms:.1f} ms"),
            ("shipyard SDK through its server (REST)", f"{rest_ms:.1f} ms (goal < 100 ms)"),
            ("mlflow search_runs, SQLite", f"{theirs_ms:.1f} ms"),
            ("mlflow / shipyard (embedded)", f"{theirs_ms / ours_ms:.1f}x"),
        ],
    )


if __name__ == "__main__":
    main()
