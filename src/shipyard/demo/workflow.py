"""The demo: the fraud training pipeline (run twice, the second time from cache), gates and
an approval with separation of duties, then the champion served with its predictions logged."""

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
    champion = govern(settings, run, console=out)
    serve_champion(settings, champion, seed=seed, console=out)
    out.print(
        f"done in {time.perf_counter() - started:.1f}s - try: shipyard pipeline show {run.id}, "
        "shipyard models versions fraud, shipyard gate reports fraud, shipyard audit list, "
        "shipyard lineage models:/fraud@champion, shipyard predlog tail"
    )
    return str(run.id)


_TRAIN_STEP = {"logistic_regression": "train_logistic", "gradient_boosting": "train_boosting"}


#: The gate policy of the demo: performance at a 3% alert budget, fairness across age bands
#: (the favourable outcome for a card holder is not being flagged), the data the model was
#: trained on, and the current champion when there is one.
POLICY: dict[str, Any] = {
    "label": "is_fraud",
    "flag_rate": 0.03,
    "checks": [
        {"metric": "roc_auc", "min": 0.75},
        {"metric": "recall", "min": 0.1},
        {"champion_challenger": {"metric": "roc_auc", "max_drop": 0.01, "resamples": 500}},
        {
            "fairness": {
                "sensitive": "age_band",
                "reference": "30-49",
                "favourable": 0,
                "adverse_impact_ratio_min": 0.8,
                "equalized_odds_difference_max": 0.1,
            }
        },
        {"data_validation": {"schema": "training"}},
        {"drift": {"reference": "training", "method": "psi", "max": 0.1}},
    ],
}
PEOPLE = {"ana": "approver", "rui": "approver"}  # a senior data scientist, a validator


def govern(settings: Settings, run: Any, *, console: Console) -> int:
    """Register both candidates (as ana), gate them, let ana ask for promotion of the one
    that passes, show she cannot approve it herself, have rui (approver) approve it, verify
    the audit chain and write the dossier. Returns the new champion's version."""
    import shipyard
    from shipyard.core.actor import acting_as
    from shipyard.core.errors import ConflictError, PermissionDeniedError
    from shipyard.demo.data import FEATURES
    from shipyard.governance.dossier import render_dossier

    backend = shipyard.sdk.context.current().get_backend()
    gov = backend.governance
    train, test = run.load("split", "output_0"), run.load("split", "output_1")
    versions: dict[int, str] = {}
    with acting_as("ana"):
        for candidate, step_name in _TRAIN_STEP.items():
            step = next(s for s in run.record.steps if s.step == step_name)
            mv = shipyard.register_model(
                "fraud",
                run.load(step_name),
                test[FEATURES][:5],
                run_id=step.run_id,
                description=f"Card-fraud scorer ({candidate}), pipeline run {run.id}",
                training_data=train[FEATURES],
            )
            versions[mv.version] = candidate
    for name, role in PEOPLE.items():
        with contextlib.suppress(ConflictError):  # a second demo run finds them
            gov.identity.create_user(name, role)
    backend.registry.set_governance(
        "fraud",
        use_case="fraud_detection",
        owner="fraud-analytics",
        risk_tier="high",
        intended_use="Score card transactions for review by the fraud team; not for "
        "decisions about credit or accounts.",
        approvals_required=1,
    )
    table = Table(title="Gate reports", header_style="bold")
    for column in ("version", "candidate", "passed", "failed checks"):
        table.add_column(column)
    passed: list[int] = []
    with acting_as("ci"):
        for version, candidate in versions.items():
            report = backend.gates.evaluate("fraud", version, POLICY, test)
            failed = [f"{c.name}: {c.message}" for c in report.failed_checks]
            table.add_row(
                str(version),
                candidate,
                "[green]yes[/]" if report.passed else "[red]no[/]",
                "\n".join(failed) or "-",
            )
            if report.passed:
                passed.append(version)
    console.print(table)
    if not passed:
        raise PipelineError("no candidate passed the gates; nothing to promote")
    chosen = passed[0]
    with acting_as("ana"):
        gov.approvals.request("fraud", chosen, note="passes every gate; ready for review")
        try:
            gov.approvals.approve("fraud", chosen, role=gov.identity.store.get_user("ana").role)
        except PermissionDeniedError as exc:
            console.print(f"ana approves her own model: [red]refused[/] ({exc.message})")
    rui = gov.identity.store.get_user("rui")
    with acting_as("rui"):
        gov.approvals.approve("fraud", chosen, role=rui.role, note="reviewed gates and dossier")
    console.print(
        f"rui ({rui.role.value}) approved: fraud v{chosen} is in production and holds champion"
    )
    check = gov.audit.verify()
    console.print(
        f"audit chain {'intact' if check.ok else 'BROKEN'}: {check.events} events, "
        f"head {check.head[:16]}"
    )
    page = settings.predlog_root.parent / f"dossier-fraud-v{chosen}.html"
    page.write_text(
        render_dossier(
            backend.registry,
            backend.gates,
            gov.approvals,
            gov.audit,
            backend.pipelines.store if backend.pipelines else None,
            "fraud",
            chosen,
            retention_years=settings.audit_retention_years,
        ),
        encoding="utf-8",
    )
    console.print(f"dossier for reviewers: {page}")
    return chosen


def serve_champion(settings: Settings, version: int, *, seed: int, console: Console) -> None:
    """Serve fraud@champion and send it a day of traffic; show the prediction log."""
    from shipyard.demo.data import FEATURES, make_transactions

    console.print(f"serving [bold]fraud@champion[/] (version {version})")
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
