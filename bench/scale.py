"""Team-mode capacity: ingest through 2 server processes on one PostgreSQL, run search at
10k and 100k runs, and serving with 1 and 2 replica processes. Figures for docs/capacity.md.

1. Ingest: `shipyard server --workers 2` on PostgreSQL; 8 client processes each log
   ``--points`` metric points with log_batch (1,000 per call). Exact counts checked in SQL.
2. Search: runs with 20 metrics bulk-loaded into SQLite and PostgreSQL stores (not timed);
   then, through `shipyard server`, the first page (100) of the newest runs, of a metric
   filter, and of a metric sort: best of 5.
3. Serving: `shipyard serve --workers 1` and `--workers 2` (two replicas on one socket), wrk
   with 16 connections for ``--seconds``, one row per request.

    .venv/bin/python bench/scale.py [--points 50000] [--runs 10000,100000] [--seconds 10]

Bounded: loopback only, fixed counts and durations. PostgreSQL: SHIPYARD_TEST_POSTGRES_URI
(default the machine's `test` database); a schema is made for the run and dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _common import BIN, free_port, report, start, stop

PG = os.environ.get(
    "SHIPYARD_TEST_POSTGRES_URI", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

CLIENT = """
import sys, time
from shipyard.bootstrap import rest_backend
from shipyard.core.settings import Settings
from shipyard.tracking.models import Metric

url, points = sys.argv[1], int(sys.argv[2])
backend = rest_backend(Settings(uri=url))
run = backend.tracking.create_run("ingest", name="client")
sent = 0
while sent < points:
    n = min(1000, points - sent)
    backend.tracking.log_batch(run.id, [Metric("m", float(i), sent + i, 1) for i in range(n)])
    sent += n
backend.tracking.end_run(run.id)
print(run.id)
"""


def pg_schema() -> tuple[str, Any]:
    """A fresh schema on the PostgreSQL server, and a function that drops it."""
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    sep = "&" if "?" in PG else "?"
    return f"{PG}{sep}options=-csearch_path%3D{schema}", drop


def server(uri: str, artifacts: Path, workers: int = 1) -> tuple[Any, str]:
    port = free_port()
    proc = start(
        [str(BIN / "shipyard"), "server", "--port", str(port), "--workers", str(workers)],
        f"http://127.0.0.1:{port}/health",
        env={"SHIPYARD_URI": uri, "SHIPYARD_ARTIFACTS": str(artifacts)},
    )
    return proc, f"http://127.0.0.1:{port}"


def ingest(points: int, work: Path) -> list[tuple[str, str]]:
    import sqlalchemy as sa

    uri, drop = pg_schema()
    proc, url = server(uri, work / "ingest-blobs", workers=2)
    try:
        script = work / "client.py"
        script.write_text(CLIENT)
        started = time.perf_counter()
        clients = [
            subprocess.Popen(
                [sys.executable, str(script), url, str(points)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        ids = []
        for client in clients:
            out, _ = client.communicate(timeout=900)
            assert client.returncode == 0, "a client failed"
            ids.append(out.strip())
        seconds = time.perf_counter() - started
        engine = sa.create_engine(uri)
        with engine.connect() as conn:
            counts = [
                conn.execute(
                    sa.text("SELECT coalesce(sum(points), 0) FROM metric_chunks WHERE run_id = :r"),
                    {"r": r},
                ).scalar()
                for r in ids
            ]
        engine.dispose()
    finally:
        stop(proc)
        drop()
    exact = all(c == points for c in counts)
    total = 8 * points
    return [
        ("clients x points", f"8 x {points:,} (log_batch of 1,000)"),
        ("server", "shipyard server --workers 2, PostgreSQL"),
        ("wall clock", f"{seconds:.1f} s"),
        ("points/s", f"{total / seconds:,.0f}"),
        ("stored exactly", f"{'yes' if exact else 'NO'} ({sum(counts):,} of {total:,})"),
    ]


def bulk_runs(uri: str, n: int) -> str:
    """``n`` finished runs with 20 metrics and 5 params each, straight into the tables."""
    import sqlalchemy as sa

    from shipyard.bootstrap import local_backend
    from shipyard.core.ids import new_id
    from shipyard.core.settings import Settings
    from shipyard.store import schema as t

    backend = local_backend(Settings(uri=uri))
    exp = backend.tracking.get_or_create_experiment("scale")
    backend.close()
    rng = random.Random(7)
    engine = sa.create_engine(backend.uri)
    now = int(time.time() * 1000)
    chunk = 5_000
    for start_at in range(0, n, chunk):
        runs, latest, params, tags = [], [], [], []
        for i in range(start_at, min(n, start_at + chunk)):
            run_id = new_id("run")
            runs.append(
                {
                    "id": run_id,
                    "experiment_id": exp.id,
                    "name": f"r{i}",
                    "status": "FINISHED",
                    "start_time": now - i,
                    "end_time": now - i,
                }
            )
            tags.append({"run_id": run_id, "key": "shipyard.user", "value": "bench"})
            params += [
                {"run_id": run_id, "key": f"p{j}", "value": rng.choice("abcd")} for j in range(5)
            ]
            latest += [
                {
                    "run_id": run_id,
                    "key": f"m{j}",
                    "value": rng.random(),
                    "is_nan": False,
                    "step": 0,
                    "timestamp": now,
                }
                for j in range(20)
            ]
        with engine.begin() as conn:
            conn.execute(sa.insert(t.runs), runs)
            conn.execute(sa.insert(t.params), params)
            conn.execute(sa.insert(t.tags), tags)
            conn.execute(sa.insert(t.latest_metrics), latest)
    with engine.begin() as conn:  # what autovacuum (or SQLite's optimize) would have done
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return exp.id


def first_page(url: str, body: dict[str, Any], repeat: int = 5) -> float:
    """Best of ``repeat``: milliseconds to the first page through the server."""
    best = float("inf")
    with httpx.Client(timeout=120) as client:
        client.post(f"{url}/api/v1/runs/search", json=body).raise_for_status()  # warm
        for _ in range(repeat):
            started = time.perf_counter()
            answer = client.post(f"{url}/api/v1/runs/search", json=body)
            answer.raise_for_status()
            best = min(best, (time.perf_counter() - started) * 1000)
            assert len(answer.json()["runs"]) == 100
    return best


def search(sizes: list[int], work: Path) -> list[tuple[str, str]]:
    rows = []
    for kind in ("sqlite", "postgresql"):
        for n in sizes:
            if kind == "sqlite":
                uri, drop = str(work / f"search-{n}"), (lambda: None)
            else:
                uri, drop = pg_schema()
            try:
                loaded = time.perf_counter()
                exp = bulk_runs(uri, n)
                loaded = time.perf_counter() - loaded
                proc, url = server(uri, work / f"search-blobs-{kind}-{n}")
                try:
                    base: dict[str, Any] = {"experiment_ids": [exp], "max_results": 100}
                    newest = first_page(url, base)
                    filtered = first_page(url, {**base, "filter": "metrics.m0 > 0.5"})
                    ordered = first_page(url, {**base, "order_by": ["metrics.m1 DESC"]})
                finally:
                    stop(proc)
            finally:
                drop()
            rows.append(
                (
                    f"{kind}, {n:,} runs x 20 metrics (loaded in {loaded:.0f} s)",
                    f"newest {newest:.0f} ms, filter {filtered:.0f} ms, sort {ordered:.0f} ms",
                )
            )
    return rows


def serving(seconds: int, work: Path) -> list[tuple[str, str]]:
    import shutil

    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    import shipyard

    if shutil.which("wrk") is None:
        return [("serving", "wrk is not installed (apt-get install wrk): skipped")]
    cols = [f"f{i}" for i in range(10)]
    X, y = make_classification(2000, 10, random_state=0)
    frame = pd.DataFrame(X, columns=cols)
    store = work / "serving"
    shipyard.set_uri(str(store))
    shipyard.register_model("scale", LogisticRegression().fit(frame, y), frame[:5])
    shipyard.set_alias("scale", "champion", 1, reason="bench")
    shipyard.set_uri(None)
    body = json.dumps(
        {"dataframe_split": {"columns": cols, "data": frame[:1].round(6).values.tolist()}}
    )
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    rows = []
    for workers in (1, 2):
        port = free_port()
        proc = start(
            [str(BIN / "shipyard"), "serve", "models:/scale@champion", "--port", str(port),
             "--workers", str(workers), "--no-predlog"],
            f"http://127.0.0.1:{port}/v2/health/ready",
            env={"SHIPYARD_URI": str(store)},
        )  # fmt: skip
        try:
            out = subprocess.run(
                ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
                 f"http://127.0.0.1:{port}/invocations"],
                capture_output=True, text=True, timeout=seconds + 60, check=True,
            ).stdout  # fmt: skip
        finally:
            stop(proc)
        rps = next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec"))
        p99 = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("99%"))
        non2xx = [line for line in out.splitlines() if "Non-2xx" in line]
        rows.append(
            (
                f"{workers} replica process(es), 1 row, wrk -c16",
                f"{float(rps):,.0f} req/s, p99 {p99}"
                + (f" ({non2xx[0].strip()})" if non2xx else ""),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=50_000, help="per client (8 clients)")
    parser.add_argument("--runs", default="10000,100000", help="run counts for search")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per case")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(f"machine: {os.cpu_count()} cores; work folder {work}")
    report("Ingest: 8 clients, 2 server processes, one PostgreSQL", ingest(args.points, work))
    sizes = [int(s) for s in args.runs.split(",") if s]
    report("Search: first page of 100 through shipyard server (best of 5)", search(sizes, work))
    report("Serving: replicas on one socket", serving(args.seconds, work))


if __name__ == "__main__":
    main()
