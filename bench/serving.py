"""Model serving: Shipyard vs `mlflow models serve`, same model, workers, load and payloads.

One scikit-learn gradient boosting model on 20 features. Both servers run one worker on
127.0.0.1; wrk drives each with the same connections, duration and bodies (1 row and 100
rows per request, MLflow's `dataframe_split`). Shipyard runs with prediction logging on.
The floor is the model's own in-process predict time. `--soak SECONDS` then holds
Shipyard at 70% of its measured capacity and reports its RSS at the start and the end.

    ../.venv-bench/bin/python serving.py [--duration 10] [--connections 16] [--soak 300]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
from _common import BIN, free_port, report, start, stop
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

COLS = [f"x{i}" for i in range(20)]


def wrk(url: str, body: str, connections: int, duration: int) -> dict[str, float]:
    """Requests/s and latency percentiles from wrk (bounded by duration)."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout  # fmt: skip
    script.unlink()

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(url: str, body: str, rate: float, seconds: int) -> int:
    """Hold ``rate`` requests/s (paced, 8 threads) for ``seconds``; return failures."""
    import httpx

    failures = 0
    stop_at = time.monotonic() + seconds
    per_thread = rate / 8

    def loop() -> None:
        nonlocal failures
        with httpx.Client() as client:
            next_at = time.monotonic()
            while (now := time.monotonic()) < stop_at:
                if now < next_at:
                    time.sleep(next_at - now)
                next_at += 1 / per_thread
                r = client.post(url, content=body, headers={"content-type": "application/json"})
                failures += r.status_code != 200

    threads = [threading.Thread(target=loop) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--soak", type=int, default=0, help="seconds at 70%% load (0: skip)")
    args = parser.parse_args()

    X, y = make_classification(5000, 20, n_informative=10, random_state=0)
    frame = pd.DataFrame(X, columns=COLS)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame, y)
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))

    import mlflow

    import shipyard

    shipyard.set_uri(str(work / "shipyard"))
    shipyard.register_model("bench", model, frame[:5])
    shipyard.set_alias("bench", "champion", 1)
    loaded = shipyard.load_model("models:/bench@champion")
    mlflow.set_tracking_uri(f"sqlite:///{work}/mlflow.db")
    mlflow_path = work / "mlflow-model"
    mlflow.sklearn.save_model(
        model,
        str(mlflow_path),
        input_example=frame[:5],
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    )
    pyfunc = mlflow.pyfunc.load_model(str(mlflow_path))

    def floor(fn, n: int = 300) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n * 1000

    one = frame[:1]
    cols1 = {c: one[c].to_numpy() for c in COLS}
    floors = {
        "sklearn predict_proba, 1 row": floor(lambda: model.predict_proba(one)),
        "MLflow pyfunc predict, 1 row": floor(lambda: pyfunc.predict(one)),
        "ONNX Runtime (Shipyard infer), 1 row": floor(lambda: loaded.infer(cols1)),
    }
    report("In-process floor (ms per call)", [(k, f"{v:.3f}") for k, v in floors.items()])

    bodies = {
        rows: json.dumps(
            {
                "dataframe_split": {
                    "columns": COLS,
                    "data": frame[:rows].to_numpy().round(6).tolist(),
                }
            }
        )
        for rows in (1, 100)
    }
    env = {"RAY_USAGE_STATS_ENABLED": "0", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    results: dict[tuple[str, int], dict[str, float]] = {}
    sy_port, ml_port = free_port(), free_port()
    sy = start(
        [
            str(BIN / "shipyard"),
            "serve",
            "models:/bench@champion",
            "--port",
            str(sy_port),
            "--workers",
            "1",
        ],
        f"http://127.0.0.1:{sy_port}/v2/health/ready",
        env={**env, "SHIPYARD_URI": str(work / "shipyard")},
    )
    try:
        measure(sy, sy_port, ml_port, bodies, env, results, floors, mlflow_path, args)
    finally:
        stop(sy)


def measure(sy, sy_port, ml_port, bodies, env, results, floors, mlflow_path, args) -> None:
    """Drive both servers, print the comparison, then the optional soak."""
    for rows, body in bodies.items():
        results[("shipyard", rows)] = wrk(
            f"http://127.0.0.1:{sy_port}/invocations", body, args.connections, args.duration
        )
    ml = start(
        [str(BIN / "mlflow"), "models", "serve", "-m", str(mlflow_path), "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(ml_port), "--workers", "1"],
        f"http://127.0.0.1:{ml_port}/ping", env={**env, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )  # fmt: skip
    try:
        for rows, body in bodies.items():
            results[("mlflow", rows)] = wrk(
                f"http://127.0.0.1:{ml_port}/invocations", body, args.connections, args.duration
            )
    finally:
        stop(ml)

    for rows in (1, 100):
        s, m = results[("shipyard", rows)], results[("mlflow", rows)]
        report(
            f"{rows} row(s) per request, {args.connections} connections, 1 worker, {args.duration}s",
            [
                (
                    "shipyard req/s",
                    f"{s['rps']:.0f} (p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms, non-2xx {s['errors']})",
                ),
                (
                    "mlflow req/s",
                    f"{m['rps']:.0f} (p50 {m['p50']:.2f} ms, p99 {m['p99']:.2f} ms, non-2xx {m['errors']})",
                ),
                ("throughput ratio", f"{s['rps'] / m['rps']:.1f}x (goal >= 10x)"),
                ("p99 ratio", f"{s['p99'] / m['p99']:.3f} of MLflow's (goal <= 0.2)"),
                (
                    "shipyard time per request vs floor",
                    f"{1000 / s['rps']:.3f} ms vs {floors['ONNX Runtime (Shipyard infer), 1 row']:.3f} ms in process",
                ),
                (
                    "mlflow time per request vs floor",
                    f"{1000 / m['rps']:.3f} ms vs {floors['MLflow pyfunc predict, 1 row']:.3f} ms in process",
                ),
            ],
        )
    try:
        if args.soak:
            rate = 0.7 * results[("shipyard", 1)]["rps"]
            start_rss = rss_mib(sy.pid)
            failures = soak(f"http://127.0.0.1:{sy_port}/invocations", bodies[1], rate, args.soak)
            end_rss = rss_mib(sy.pid)
            report(
                f"Soak: {args.soak}s at {rate:.0f} req/s (70% of capacity), prediction log on",
                [("RSS start", f"{start_rss:.1f} MiB"), ("RSS end", f"{end_rss:.1f} MiB"),
                 ("growth", f"{end_rss - start_rss:+.1f} MiB"), ("failed requests", str(failures))],
            )  # fmt: skip
    finally:
        pass


if __name__ == "__main__":
    main()
