"""Metric ingestion: Shipyard's SDK against MLflow's log_metric, embedded and over REST.

Prints metrics per second for N `log_metric` calls (the clock stops when the run has ended
and every point is durable), MLflow's figures on the same store kind, the raw
`sqlite3.executemany` floor, and the client's peak memory while logging 1,000,000 points.

    .venv-bench/bin/python bench/tracking_ingest.py [--points 20000] [--mlflow-points 2000]

MLflow does about 200 metrics/s here, so it logs fewer points (its rate is what is compared).
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BIN, free_port, report, settle, start, start_mlflow_server, stop


def shipyard_rate(uri: str, points: int) -> float:
    import shipyard

    shipyard.set_uri(uri)
    with shipyard.start_run(experiment="warmup"):
        shipyard.log_metric("x", 1.0)
    started = time.perf_counter()
    with shipyard.start_run(experiment="bench"):
        for i in range(points):
            shipyard.log_metric("loss", 1.0 / (i + 1), step=i)
    elapsed = time.perf_counter() - started
    shipyard.set_uri(None)
    return points / elapsed


def mlflow_rate(uri: str, points: int) -> float:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        mlflow.log_metric("x", 1.0)
    started = time.perf_counter()
    with mlflow.start_run():
        for i in range(points):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    return points / (time.perf_counter() - started)


def floor_rate(path: Path, points: int, indexed: bool) -> float:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(
        "CREATE TABLE metrics (id INTEGER PRIMARY KEY, run_id TEXT, key TEXT, value REAL, "
        "is_nan INTEGER, step INTEGER, timestamp INTEGER)"
    )
    if indexed:
        con.execute("CREATE INDEX ix ON metrics (run_id, key, step)")
    rows = [("run_x", "loss", 1.0 / (i + 1), 0, i, 1_700_000_000_000 + i) for i in range(points)]
    started = time.perf_counter()
    with con:
        con.executemany(
            "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) "
            "VALUES (?,?,?,?,?,?)",
            rows,
        )
    elapsed = time.perf_counter() - started
    con.close()
    return points / elapsed


# VmHWM (peak RSS) starts afresh at exec; ru_maxrss would inherit this parent's peak.
MEMORY_SCRIPT = """
import sys, shipyard
shipyard.set_uri(sys.argv[1])
with shipyard.start_run(experiment="memory"):
    for i in range(int(sys.argv[2])):
        shipyard.log_metric("m", float(i), step=i)
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(status)
"""


def peak_rss_mib(uri: str, points: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, uri, str(points)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--mlflow-points", type=int, default=2_000)
    parser.add_argument("--mlflow-rest-points", type=int, default=500)
    parser.add_argument("--memory-points", type=int, default=1_000_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))

    ours = shipyard_rate(str(tmp / "shipyard"), args.points)
    theirs = mlflow_rate(f"sqlite:///{tmp / 'mlflow.db'}", args.mlflow_points)
    floor_idx = floor_rate(tmp / "floor-idx.db", args.points, indexed=True)
    floor_bare = floor_rate(tmp / "floor-bare.db", args.points, indexed=False)
    report(
        f"Embedded (SQLite, WAL, synchronous=FULL), {args.points:,} log_metric calls",
        [
            ("shipyard SDK", f"{ours:,.0f} metrics/s"),
            (f"mlflow log_metric ({args.mlflow_points:,} calls)", f"{theirs:,.0f} metrics/s"),
            ("floor: sqlite3.executemany, same table + index", f"{floor_idx:,.0f} metrics/s"),
            ("floor: sqlite3.executemany, bare table", f"{floor_bare:,.0f} metrics/s"),
            ("shipyard / mlflow", f"{ours / theirs:,.0f}x (goal >= 200x)"),
            ("floor(indexed) / shipyard", f"{floor_idx / ours:.2f}x (goal <= 3x)"),
            ("floor(bare) / shipyard", f"{floor_bare / ours:.2f}x"),
        ],
    )

    port = free_port()
    ship = start(
        [str(BIN / "shipyard"), "server", "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        env={"SHIPYARD_URI": str(tmp / "server-store")},
    )
    mlf, mlflow_url = start_mlflow_server(tmp / "mlflow-server")
    try:
        # Both idle first: MLflow's job consumers import MLflow (up to 40 CPU seconds)
        # after its health check answers, which would slow whichever side is measured.
        settle(mlf)
        settle(ship)
        ours_rest = shipyard_rate(f"http://127.0.0.1:{port}", args.points)
        theirs_rest = mlflow_rate(mlflow_url, args.mlflow_rest_points)
    finally:
        stop(ship)
        stop(mlf)
    report(
        "Over REST (one server process each, SQLite behind it)",
        [
            ("shipyard SDK -> shipyard server", f"{ours_rest:,.0f} metrics/s"),
            (
                f"mlflow client -> mlflow server ({args.mlflow_rest_points} calls)",
                f"{theirs_rest:,.0f} metrics/s",
            ),
            ("shipyard / mlflow", f"{ours_rest / theirs_rest:,.0f}x (goal >= 100x)"),
        ],
    )

    small = peak_rss_mib(str(tmp / "mem-small"), args.memory_points // 10)
    large = peak_rss_mib(str(tmp / "mem-large"), args.memory_points)
    report(
        "Client peak RSS while logging (bounded buffer: must stay flat)",
        [
            (f"{args.memory_points // 10:,} points", f"{small:.0f} MiB"),
            (f"{args.memory_points:,} points", f"{large:.0f} MiB"),
            ("growth", f"{large - small:+.0f} MiB"),
        ],
    )


if __name__ == "__main__":
    main()
