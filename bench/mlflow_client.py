"""The real MLflow client logging with log_batch to `mlflow server` and to `shipyard server`.

Same client, same calls, same machine, one server process each with SQLite behind it, each
started, left until it and everything it started are idle, and measured alone:
100,000 metrics in batches of 1,000 (MLflow's per-request limit), then the run read back
and one metric's full history fetched, so both sides are checked for exact counts.
Goal: Shipyard's server takes them at least 5x faster than MLflow's own.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, free_port, report, settle, start, start_mlflow_server, stop


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


def measure(proc: subprocess.Popen[bytes], url: str, args: argparse.Namespace) -> list[float]:
    """Seconds for each of ``args.repeats`` runs (a fresh run each) once the server is idle;
    every point must read back."""
    waited = settle(proc)
    print(f"{url}: idle after {waited:.0f} s", flush=True)
    times = []
    for _ in range(args.repeats):
        seconds, stored = log(url, args.points, args.batch, args.keys)
        if stored != args.points:
            raise SystemExit(f"lost points at {url}: {stored} of {args.points}")
        times.append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-mlflow-"))
    # One server at a time, measured once it and what it started are idle: `mlflow server`
    # answers its health check while its five job consumers are still importing MLflow
    # (up to 40 CPU seconds), and on two cores that work would be charged to whichever side
    # is measured meanwhile (a fixed 5 s wait once made MLflow look 2x slower than it is).
    mlf, mlflow_url = start_mlflow_server(tmp / "mlflow-server")
    try:
        theirs = measure(mlf, mlflow_url, args)
    finally:
        stop(mlf)
    port = free_port()
    ship = start(
        [str(BIN / "shipyard"), "server", "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        env={"SHIPYARD_URI": str(tmp / "shipyard")},
    )
    try:
        ours = measure(ship, f"http://127.0.0.1:{port}", args)
    finally:
        stop(ship)
    mine, their = statistics.median(ours), statistics.median(theirs)

    def span(times: list[float]) -> str:
        return f"{args.points / max(times):,.0f}-{args.points / min(times):,.0f} metrics/s " + (
            f"({min(times):.1f}-{max(times):.1f} s)"
        )

    report(
        f"MLflow client, log_batch of {args.batch:,} x {args.points // args.batch} "
        f"({args.points:,} metrics, {args.keys} keys), one server process each, SQLite, "
        f"{args.repeats} runs each",
        [
            ("mlflow client -> shipyard server", span(ours)),
            ("mlflow client -> mlflow server", span(theirs)),
            ("points read back", f"{args.points:,} per run on both (exact)"),
            ("shipyard / mlflow (medians)", f"{their / mine:.1f}x (goal >= 5x)"),
        ],
    )


if __name__ == "__main__":
    main()
