"""The demo: the fraud training pipeline, run twice (the second time from cache)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from shipyard.core.errors import PipelineError
from shipyard.core.settings import Settings
from shipyard.pipelines.models import StepStatus


def run_demo(
    settings: Settings, *, rows: int = 50_000, seed: int = 7, console: Console | None = None
) -> str:
    """Run the pipeline, show its steps and the candidates, then rerun it from cache."""
    import shipyard
    from shipyard.demo.pipeline import fraud_training

    out = console or Console()
    shipyard.set_uri(settings.store_uri)
    out.print(f"[bold]Shipyard demo[/] - store: {shipyard.get_uri()}")
    started = time.perf_counter()

    def show(step: str, status: StepStatus) -> None:
        if status is StepStatus.RUNNING:
            out.print(f"  [blue]running[/] {step}")
        elif status is StepStatus.CACHED:
            out.print(f"  [cyan]Using cached version of {step}[/]")
        elif status is StepStatus.FAILED:
            out.print(f"  [red]failed[/] {step}")

    run = fraud_training.run(rows=rows, seed=seed, on_event=show)
    data = run.load("generate")
    out.print(
        f"pipeline run {run.id}: {rows:,} transactions, fraud rate "
        f"{data['is_fraud'].mean():.2%}, {len(run.record.steps)} steps in "
        f"{time.perf_counter() - started:.1f}s"
    )
    results = sorted(
        (run.load(s.step) for s in run.record.steps if s.step.startswith("evaluate")),
        key=lambda r: -r["val_roc_auc"],
    )
    table = Table(title="Candidates (best first)", header_style="bold")
    for column in ("candidate", "val_roc_auc", "val_pr_auc", "val_recall_at_2pct"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result["name"],
            *(f"{result[k]:.4f}" for k in ("val_roc_auc", "val_pr_auc", "val_recall_at_2pct")),
        )
    out.print(table)

    again = time.perf_counter()
    rerun = fraud_training.run(rows=rows, seed=seed)
    cached = sum(s.status is StepStatus.CACHED for s in rerun.record.steps)
    out.print(
        f"second run {rerun.id}: {cached}/{len(rerun.record.steps)} steps from cache in "
        f"{time.perf_counter() - again:.2f}s"
    )
    serve_champion(settings, run, results[0]["name"], seed=seed, console=out)
    out.print(
        f"done in {time.perf_counter() - started:.1f}s - try: shipyard pipeline show {run.id}, "
        "shipyard models versions fraud, shipyard predlog tail, "
        "shipyard serve models:/fraud@champion"
    )
    return str(run.id)


_TRAIN_STEP = {"logistic_regression": "train_logistic", "gradient_boosting": "train_boosting"}


def serve_champion(settings: Settings, run: Any, best: str, *, seed: int, console: Console) -> None:
    """Register the best candidate as fraud@champion, serve it, send it a day of traffic."""
    import shipyard
    from shipyard.demo.data import FEATURES, make_transactions

    step = next(s for s in run.record.steps if s.step == _TRAIN_STEP[best])
    model = run.load(step.step)
    train, test = run.load("split", "output_0"), run.load("split", "output_1")
    version = shipyard.register_model(
        "fraud",
        model,
        test[FEATURES][:5],
        run_id=step.run_id,
        description=f"Card-fraud scorer ({best}), trained by pipeline run {run.id}",
        training_data=train[FEATURES],
    )
    shipyard.set_alias("fraud", "champion", version.version)
    console.print(
        f"registered [bold]fraud[/] version {version.version} ({', '.join(version.flavors)}) "
        "and set alias champion"
    )
    day = make_transactions(2_000, seed + 1)[FEATURES]
    with (
        _model_server(settings) as url,
        httpx.Client(timeout=30) as client,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task("sending a day of transactions", total=len(day))
        flagged = 0
        for start in range(0, len(day), 50):
            batch = day.iloc[start : start + 50]
            reply = client.post(
                f"{url}/invocations",
                json={"dataframe_split": json.loads(batch.to_json(orient="split", index=False))},
            )
            reply.raise_for_status()
            flagged += int(sum(reply.json()["predictions"]))
            progress.advance(task, len(batch))
        metrics = client.get(f"{url}/metrics").text
    requests = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("shipyard_inference_requests_total{")
    )
    console.print(
        f"model server on {url} answered {requests:.0f} requests ({len(day):,} transactions, "
        f"{flagged} flagged)"
    )
    from shipyard.predlog.reader import read_log

    log = read_log(settings.predlog_root, deployment="fraud", last_rows=5)
    table = Table(title="Last logged predictions", header_style="bold")
    for column in ("timestamp", "version", "request_id", "amount", "prediction", "score"):
        table.add_column(column)
    for row in log.to_pylist():
        table.add_row(
            row["timestamp"].strftime("%H:%M:%S.%f")[:-3],
            row["version"],
            row["request_id"][:12],
            f"{row['input.amount']:.2f}",
            str(row["output.prediction"]),
            f"{row.get('output.proba_1', float('nan')):.4f}",
        )
    console.print(table)


@contextlib.contextmanager
def _model_server(settings: Settings) -> Iterator[str]:
    """`shipyard serve models:/fraud@champion` on a free loopback port, stopped by PID."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SHIPYARD_URI": settings.store_uri,
        "SHIPYARD_PREDLOG": str(settings.predlog_root),
    }
    proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "shipyard", "serve", "models:/fraud@champion", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise PipelineError(
                    f"the model server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise PipelineError("the model server did not start within 60 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()  # SIGTERM: the server closes its prediction-log files and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
