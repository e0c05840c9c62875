"""Federated training against centralised and local-only training, side by side.

Five non-IID synthetic bank silos (200,000 rows, seeded): the global model's ROC AUC on
every silo's held-out rows pooled, against one logistic regression trained on all rows
pooled (what no bank may do) and against each bank's own model (what each does today),
and the seconds per round. Runs in the federated environment:

    make .venv-federated/.installed && .venv-federated/bin/python bench/federated.py
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _common
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROWS = int(os.environ.get("BENCH_FED_ROWS", "200000"))


def main() -> None:
    os.environ["SHIPYARD_URI"] = tempfile.mkdtemp(prefix="bench-federated-")
    logging.getLogger("flwr").setLevel(logging.WARNING)
    import shipyard.federated as fl
    from shipyard.federated import trainer
    from shipyard.federated.synthetic import bank_silos

    silos = bank_silos(ROWS, 5, seed=0)
    parts = {n: trainer.split_silo(n, f, "default", 0.2, 0) for n, f in silos.items()}
    columns = next(iter(parts.values())).columns
    X_test = np.vstack([p.X_test for p in parts.values()])
    y_test = np.concatenate([p.y_test for p in parts.values()])

    def auc(model: object) -> float:
        frame = pd.DataFrame(X_test, columns=columns)
        return float(roc_auc_score(y_test, model.predict_proba(frame)[:, 1]))  # type: ignore[attr-defined]

    def fit(X: np.ndarray, y: np.ndarray) -> object:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
            pd.DataFrame(X, columns=columns), y
        )

    print(
        f"{len(silos)} silos, {ROWS:,} rows: "
        + ", ".join(
            f"{n} {len(f):,} rows (default rate {f['default'].mean():.3f})"
            for n, f in silos.items()
        )
    )
    started = time.perf_counter()
    central = auc(
        fit(
            np.vstack([p.X_train for p in parts.values()]),
            np.concatenate([p.y_train for p in parts.values()]),
        )
    )
    central_s = time.perf_counter() - started
    local = [auc(fit(p.X_train, p.y_train)) for p in parts.values()]
    rows = [
        ("centralised (all rows pooled)", central, None, central_s),
        ("local only (median of 5 banks)", float(np.median(local)), None, None),
    ]
    jobs = {
        "FedAvg, 30 rounds": {"rounds": 30},
        "FedProx mu 0.01, 30 rounds": {"rounds": 30, "strategy": "fedprox", "proximal_mu": 0.01},
        "FedAvg + SecAgg+, 30 rounds": {"rounds": 30, "secure_aggregation": {}},
        "FedAvg + central DP (noise 2.0), 10 rounds": {
            "rounds": 10,
            "learning_rate": 0.1,
            "dp": {"mode": "central-server-fixed", "noise_multiplier": 2.0, "clipping_norm": 1.0},
        },
        "FedAvg + central DP (noise 0.5), 10 rounds": {
            "rounds": 10,
            "learning_rate": 0.1,
            "dp": {
                "mode": "central-server-fixed",
                "noise_multiplier": 0.5,
                "clipping_norm": 1.0,
                "above_max": "label",
            },
        },
    }
    notes = {}
    for label, job in jobs.items():
        started = time.perf_counter()
        result = fl.train(silos, fl.load_config({"label": "default", **job}))
        total = time.perf_counter() - started
        per_round = float(np.median([r["seconds"] for r in result.report["rounds"]]))
        rows.append((label, auc(result.model), per_round, total))
        if result.privacy:
            notes[label] = result.report["privacy_statement"]

    print()
    print("| training | ROC AUC (pooled held-out rows) | vs centralised | s per round | total s |")
    print("|---|---|---|---|---|")
    for label, value, per_round, total in rows:
        print(
            f"| {label} | {value:.4f} | {value - central:+.4f} | "
            f"{'' if per_round is None else f'{per_round:.3f}'} | "
            f"{'' if total is None else f'{total:.1f}'} |"
        )
    print()
    for label, note in notes.items():
        print(f"{label}: {note}")
    print()
    deployed(silos, fl)
    fedavg = rows[2][1]
    print(
        f"\nFedAvg within {abs(fedavg - central):.4f} of centralised (goal 0.002); "
        f"local-only models {central - float(np.median(local)):.4f} below it."
    )


def deployed(silos: dict[str, pd.DataFrame], fl: object) -> None:
    """The same FedAvg job on Flower's deployment runtime: a SuperLink and five SuperNodes,
    each its own process on 127.0.0.1 (started as a user would, with the shipyard CLI)."""
    import signal
    import subprocess

    from shipyard.federated.deployment import run, wait_for

    tmp = Path(tempfile.mkdtemp(prefix="bench-flower-"))
    env = {**os.environ, "FLWR_HOME": str(tmp / "flwr")}
    port = _common.free_port()
    procs = []

    def spawn(*argv: str) -> None:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "shipyard", "federated", *argv],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    try:
        spawn("superlink", "--port", str(port), "--database", str(tmp / "link.db"))
        wait_for(f"http://127.0.0.1:{port}/", timeout=120)
        for name, frame in silos.items():
            path = tmp / f"{name}.parquet"
            frame.to_parquet(path)
            spawn(
                "silo",
                "--superlink",
                f"127.0.0.1:{port}",
                "--name",
                name,
                "--data",
                str(path),
                "--port",
                str(_common.free_port()),
            )
        job = fl.load_config({"label": "default", "rounds": 3})  # type: ignore[attr-defined]
        started = time.perf_counter()
        result = run(job, f"127.0.0.1:{port}", len(silos))
        total = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    seconds = [r["seconds"] for r in result.report["rounds"]]
    print(
        f"Flower deployment runtime (SuperLink + {len(silos)} SuperNodes, separate processes): "
        f"{len(seconds)} rounds, seconds per round {', '.join(f'{s:.1f}' for s in seconds)} "
        f"(median {float(np.median(seconds)):.1f}); {total:.1f} s in all with start-up and "
        "the profile message"
    )


if __name__ == "__main__":
    main()
