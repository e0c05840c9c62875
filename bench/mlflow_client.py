"""The real MLflow client logging with log_batch to `mlflow server` and to `shipyard server`.

Same client, same calls, same machine, one server process each with SQLite behind it, each
started, left to settle and measured alone:
100,000 metrics in batches of 1,000 (MLflow's per-request limit), then the run read back
and one metric's full history fetched, so both sides are checked for exact counts.
Goal: Shipyard's server takes them at least 5x faster than MLflow's own.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import BIN, free_port, report, start, start_mlflow_server, stop

SETTLE = 5.0  # seconds a server is left idle after its health check before it is measured


def log(uri: str, total: int, batch: int, keys: int) -> tuple[float, int]:
    """Seconds to log ``total`` points with MlflowClient.log_batch; the points read back."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(uri)
    exp = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(exp)
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for first in range(0, total, batch):
        points = [
            Metric(f"m{i % keys}", i * 0.001, now + i, i // keys)
            for i in range(first, min(total, first + batch))
        ]
        client.log_batch(run.info.run_id, metrics=points)
    client.set_terminated(run.info.run_id)
    elapsed = time.perf_counter() - started
    history = client.get_metric_history(run.info.run_id, "m0")
    stored = len(history) * keys
    return elapsed, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-mlflow-"))
    # One server at a time: a server that has just answered its health check may still be
    # starting (MLflow's spawns its workers and job runner), and on two cores that work
    # would be charged to whichever side is measured meanwhile.
    mlf, mlflow_url = start_mlflow_server(tmp / "mlflow-server")
    try:
        time.sleep(SETTLE)
        theirs, theirs_n = log(mlflow_url, args.points, args.batch, args.keys)
    finally:
        stop(mlf)
    port = free_port()
    ship = start(
        [str(BIN / "shipyard"), "server", "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        env={"SHIPYARD_URI": str(tmp / "shipyard")},
    )
    try:
        time.sleep(SETTLE)
        ours, ours_n = log(f"http://127.0.0.1:{port}", args.points, args.batch, args.keys)
    finally:
        stop(ship)
    if ours_n != args.points or theirs_n != args.points:
        raise SystemExit(f"lost points: shipyard {ours_n}, mlflow {theirs_n} of {args.points}")
    report(
        f"MLflow client, log_batch of {args.batch:,} x {args.points // args.batch} "
        f"({args.points:,} metrics, {args.keys} keys), one server process each, SQLite",
        [
            (
                "mlflow client -> shipyard server",
                f"{args.points / ours:,.0f} metrics/s ({ours:.1f} s)",
            ),
            (
                "mlflow client -> mlflow server",
                f"{args.points / theirs:,.0f} metrics/s ({theirs:.1f} s)",
            ),
            ("points read back", f"{ours_n:,} / {theirs_n:,} (exact)"),
            ("shipyard / mlflow", f"{theirs / ours:.1f}x (goal >= 5x)"),
        ],
    )


if __name__ == "__main__":
    main()
