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

from shipyard.core.actor import acting_as
from shipyard.core.errors import PipelineError
from shipyard.core.settings import Settings
from shipyard.demo.automl import search_challenger
from shipyard.demo.data import FEATURES
from shipyard.demo.edge import ship_to_terminals
from shipyard.demo.federated import train_across_banks
from shipyard.demo.project import declare_project
from shipyard.pipelines.models import StepStatus


def run_demo(
    settings: Settings,
    *,
    rows: int = 50_000,
    seed: int = 7,
    automl_budget: float = 30.0,
    console: Console | None = None,
) -> str:
    """Run the pipeline, show its steps and the candidates, then rerun it from cache."""
    import shipyard
    from shipyard.demo.pipeline import fraud_training

    out = console or Console()
    # The demo's alert webhook listens on 127.0.0.1, which webhooks refuse unless allowed.
    os.environ.setdefault("SHIPYARD_WEBHOOK_ALLOW", "127.0.0.1")
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
    team_rerun(settings, rows, seed, console=out)
    champion = govern(settings, run, console=out)
    serve_champion(settings, champion, seed=seed, console=out)
    watch_production(settings, seed=seed, console=out)
    spec = declare_project(settings, PEOPLE, POLICY, FRAUD_MONITOR, DRIFT_RULE, console=out)
    ship_to_terminals(settings, run, spec, seed=seed, console=out)
    search_challenger(run, POLICY, budget=automl_budget, console=out)
    train_across_banks(seed=seed, console=out)
    out.print(
        f"done in {time.perf_counter() - started:.1f}s - try: shipyard pipeline show {run.id}, "
        "shipyard models versions fraud, shipyard gate reports fraud, shipyard audit list, "
        "shipyard lineage models:/fraud@champion, shipyard predlog tail, "
        "shipyard edge rollout status"
    )
    show_ui_tour(run.id, champion, console=out)
    return str(run.id)


def show_ui_tour(pipeline_run: str, champion: int, *, console: Console) -> None:
    """Where to look in the web UI at what the demo made."""
    base = "http://127.0.0.1:5000"
    console.print(
        f"\n[bold]See it in the web UI[/]: run [bold]shipyard ui[/] here, then open {base}/"
    )
    for path, what in (
        ("/runs?filter=metrics.val_roc_auc+>+0.5", "candidates by filter; tick two, Compare"),
        (f"/pipelines/runs/{pipeline_run}", "the pipeline DAG: status, durations, cache hits"),
        (f"/models/fraud/versions/{champion}", "gate reports, fairness by group, approvals"),
        ("/monitors/fraud-daily", "drift per feature over time, reference vs current"),
        ("/lineage?node=models:/fraud@champion", "from the champion back to its training data"),
        ("/audit?verify=true", "the audit log, its chain verified, the head hash"),
    ):
        console.print(f"  {base}{path}  [dim]{what}[/]")
    console.print(
        f"[bold]Existing MLflow code[/] works against [bold]shipyard server[/] unchanged: "
        f"MLFLOW_TRACKING_URI={base} python train.py; mlflow.pyfunc.load_model("
        "'models:/fraud@champion') loads the champion with MLflow alone; "
        "[bold]shipyard import mlflow --from <mlflow URL or mlruns>[/] brings history over."
    )


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
    with acting_as("ana", gov.identity.get_user("ana").role):
        gov.approvals.request("fraud", chosen, note="passes every gate; ready for review")
        try:
            gov.approvals.approve("fraud", chosen)
        except PermissionDeniedError as exc:
            console.print(f"ana approves her own model: [red]refused[/] ({exc.message})")
    rui = gov.identity.get_user("rui")
    with acting_as("rui", rui.role):
        gov.approvals.approve("fraud", chosen, note="reviewed gates and dossier")
    console.print(
        f"rui ({rui.role.value}) approved: fraud v{chosen} is in production and holds champion"
    )
    check = gov.audit.verify()
    console.print(
        f"audit chain {'intact' if check.ok else 'BROKEN'}: {check.events} events, "
        f"head {check.head[:16]}"
    )
    page = settings.predlog_root.parent / f"dossier-fraud-v{chosen}.html"
    page.parent.mkdir(parents=True, exist_ok=True)  # no local folder on PostgreSQL + S3
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


def decision_cut(version: int | None) -> float:
    """The score cut the champion's passing gate report decided at (its alert budget)."""
    import shipyard

    backend = shipyard.sdk.context.current().get_backend()
    if version is None:
        version = backend.registry.get_model("fraud").aliases["champion"]
    report = backend.gates.latest("fraud", version)
    fairness = next(c for c in report.checks if c.kind == "fairness")
    return float(fairness.details["threshold"])


def serve_champion(settings: Settings, version: int, *, seed: int, console: Console) -> None:
    """Serve fraud@champion and send it a day of traffic; show the prediction log."""
    from shipyard.demo.data import FEATURES, make_transactions

    cut = decision_cut(version)
    console.print(
        f"serving [bold]fraud@champion[/] (version {version}), flagging scores >= {cut:.4f} "
        "(the 3% alert budget its gates were judged at)"
    )
    day = make_transactions(2_000, seed + 1)[FEATURES]
    with (
        _model_server(settings, threshold=cut) as url,
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
def _model_server(
    settings: Settings, *, replay: bool = False, threshold: float | None = None
) -> Iterator[str]:
    """`shipyard serve models:/fraud@champion` on a free loopback port, stopped by PID."""
    args = ["serve", "models:/fraud@champion"]
    args += ["--replay"] if replay else []
    args += ["--threshold", f"{threshold:.6f}"] if threshold is not None else []
    with _shipyard_process(settings, args, "/v2/health/ready", "the model server") as url:
        yield url


@contextlib.contextmanager
def platform_server(settings: Settings) -> Iterator[str]:
    """`shipyard server` over the demo's store on a free loopback port, stopped by PID."""
    with _shipyard_process(settings, ["server"], "/health", "the platform server") as url:
        yield url


@contextlib.contextmanager
def _shipyard_process(settings: Settings, args: list[str], ready: str, what: str) -> Iterator[str]:
    """One of our own CLI's servers on a free loopback port until ``ready`` answers 200."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SHIPYARD_URI": settings.store_uri,
        "SHIPYARD_ARTIFACTS": settings.artifact_root,
        "SHIPYARD_PREDLOG": str(settings.predlog_root),
    }
    proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "shipyard", *args, "--port", str(port)],
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
                    f"{what} exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}{ready}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise PipelineError(f"{what} did not start within 60 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()  # SIGTERM: servers close their files (the prediction log) and exit
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def team_rerun(settings: Settings, rows: int, seed: int, *, console: Console) -> None:
    """Team mode: the same pipeline run by a client of `shipyard server` (SHIPYARD_URI=http://
    ...): its records, cache lookups and outputs go through the server's REST API."""
    import shipyard
    from shipyard.demo.pipeline import fraud_training

    with platform_server(settings) as url:
        shipyard.set_uri(url)
        try:
            started = time.perf_counter()
            run = fraud_training.run(rows=rows, seed=seed)
            cached = sum(s.status is StepStatus.CACHED for s in run.record.steps)
            best = max(
                (
                    run.load(s.step)["val_roc_auc"]
                    for s in run.record.steps
                    if s.step.startswith("evaluate")
                ),
            )
        finally:
            shipyard.set_uri(settings.store_uri)
    console.print(
        f"team mode: a client of [bold]shipyard server[/] ({url}) ran it as {run.id}: "
        f"{cached}/{len(run.record.steps)} steps from the server's cache in "
        f"{time.perf_counter() - started:.2f}s, best validation ROC AUC {best:.4f} read back "
        "through the server"
    )


DAYS = 5
PER_DAY = 2_000
#: The daily monitor of the fraud deployment (also declared in the demo's shipyard.yaml).
FRAUD_MONITOR: dict[str, Any] = {
    "deployment": "fraud",
    "model": "models:/fraud@champion",
    "features": FEATURES,
    "window": {"every": "1d"},
    "quality": {"min_rows": 500},
    "performance": {
        "metrics": {"roc_auc": {"min": 0.7}},
        "threshold": 0.05,
        "min_labels": 500,
        "sensitive": "age_band",
    },
}
DRIFT_RULE: dict[str, Any] = {
    "check": "drift",
    "for": 1,
    "severity": "warning",
    "notify": ["ops"],
    "retrain": "shipyard.demo.pipeline:fraud_retraining",
}


class _Receiver:
    """The demo's alert webhook: a tiny HTTP server on 127.0.0.1 that keeps what it gets."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        got: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                got.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.got = got
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def watch_production(settings: Settings, *, seed: int, console: Console) -> None:
    """Replay five days of traffic through the champion (a shift from day 3), send the
    labels, let a daily monitor find the drift, alert a webhook, retrain, and gate the
    retrained candidate."""
    from datetime import UTC, datetime, timedelta

    import shipyard
    from shipyard.demo.data import FEATURES, LABEL, recent_transactions
    from shipyard.monitoring.report import render_report
    from shipyard.monitoring.spec import parse_monitor
    from shipyard.sdk.monitoring import retrainer

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=DAYS)
    labels: list[dict[str, Any]] = []
    with (
        _model_server(settings, replay=True, threshold=decision_cut(None)) as url,
        httpx.Client(timeout=30) as client,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task(f"replaying {DAYS} days of transactions", total=DAYS * PER_DAY)
        for day in range(DAYS):
            shift = max(0.0, (day - 1) * 0.5)  # day 3 on: the market moves, gradually
            data = recent_transactions(PER_DAY, seed + 100 + day, shift)
            for i, start in enumerate(range(0, PER_DAY, 50)):
                batch = data.iloc[start : start + 50]
                moment = first + timedelta(days=day, minutes=20 * i)
                reply = client.post(
                    f"{url}/invocations",
                    json={
                        "dataframe_split": json.loads(
                            batch[FEATURES].to_json(orient="split", index=False)
                        )
                    },
                    headers={"x-shipyard-event-time": moment.isoformat()},
                )
                reply.raise_for_status()
                request_id = reply.headers["x-request-id"]
                labels += [
                    {"request_id": request_id, "row": r, "label": int(v)}
                    for r, v in enumerate(batch[LABEL])
                ]
                progress.advance(task, len(batch))
    sent = shipyard.log_feedback("fraud", labels)
    console.print(
        f"replayed {DAYS} days ({DAYS * PER_DAY:,} transactions); "
        f"{sent.accepted:,} fraud labels arrived later, joined by request id"
    )
    receiver = _Receiver()
    backend = shipyard.sdk.context.current().get_backend()
    monitors = backend.monitors
    monitors.retrain = retrainer()
    spec = parse_monitor(
        {
            "name": "fraud-daily",
            **FRAUD_MONITOR,
            "alerts": [{"name": "drift", **DRIFT_RULE}],
            "notifiers": {"ops": {"type": "webhook", "url": receiver.url, "retries": 1}},
        }
    )
    table = Table(title="Daily monitor", header_style="bold")
    for column in ("day", "rows", "status", "drifted", "score PSI", "roc_auc", "alert"):
        table.add_column(column)
    retrained = None
    try:
        for day in range(DAYS):
            begin = first + timedelta(days=day)
            result = monitors.run(spec, begin, begin + timedelta(days=1))
            drift = result.get("drift") or {}
            perf = (result.get("performance") or {}).get("metrics") or {}
            alert = next(iter(result.get("alerts") or []), None)
            if alert and alert.get("pipeline_run"):
                retrained = alert["pipeline_run"]
            table.add_row(
                begin.strftime("%a %d"),
                str(result["rows"]),
                "[red]alert[/]" if result["status"] == "alert" else result["status"],
                ", ".join(drift.get("drifted_columns", [])) or "-",
                f"{(drift.get('score') or {}).get('psi', float('nan')):.3f}",
                f"{perf['roc_auc']:.3f}" if "roc_auc" in perf else "-",
                f"{alert['status']} -> retraining {alert.get('pipeline_run') or ''}"
                if alert
                else "",
            )
    finally:
        receiver.close()
    console.print(table)
    console.print(
        f"webhook receiver got {len(receiver.got)} alert(s): "
        + "; ".join(f"{a['severity']} {a['event']}: {a['message'][:90]}" for a in receiver.got)
    )
    page = settings.predlog_root.parent / "monitor-fraud-daily.html"
    page.write_text(render_report("fraud-daily", monitors.history("fraud-daily")), encoding="utf-8")
    console.print(f"monitor report: {page}")
    if retrained is None:
        return
    record = backend.pipelines.store.get_pipeline_run(retrained) if backend.pipelines else None
    step = next((s for s in record.steps if s.step == "train_boosting"), None) if record else None
    if step is None or step.run_id is None:
        return
    from shipyard.sdk.pipelines import runner

    model = runner().load_output(step.outputs[0])
    recent = recent_transactions(8_000, seed + 999, 1.5)
    with acting_as("ana"):
        mv = shipyard.register_model(
            "fraud",
            model,
            recent[FEATURES][:5],
            run_id=step.run_id,
            description=f"Retrained on recent traffic by pipeline run {retrained}",
            training_data=recent[FEATURES],
        )
    with acting_as("ci"):
        report = backend.gates.evaluate("fraud", mv.version, POLICY, recent)
    verdict = "[green]passes[/]" if report.passed else "[red]fails[/]"
    console.print(
        f"retrained candidate fraud v{mv.version} {verdict} the gates on recent labelled data"
        + ("" if report.passed else ": " + "; ".join(c.name for c in report.failed_checks))
        + (
            "; next: shipyard models request-promotion fraud " + str(mv.version)
            if report.passed
            else ""
        )
    )
