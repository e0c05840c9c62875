"""Run a federated job inside the governed lifecycle: tracked, registered, traceable.

The job's run is the parent; each round is a child run with the silos that answered and
their metrics; the global model is registered as a candidate whose card carries the
federated report (silo fingerprints, per-silo evaluation, privacy spent) and whose lineage
names each silo's dataset by its hash. Rows never leave a silo.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.errors import InvalidInputError
from shipyard.federated import trainer
from shipyard.federated.config import FederatedConfig, check_silo_name
from shipyard.registry.card import FEDERATED_REPORT
from shipyard.tracking.models import Metric as Point
from shipyard.tracking.models import RunStatus

RUN_TAG = "shipyard.federated.job"


@dataclass
class FederatedResult:
    """What a job produced: its report, the global model and, once registered, the version."""

    run_id: str
    report: dict[str, Any]
    model: Any = field(repr=False)
    model_version: Any = None

    @property
    def global_metrics(self) -> dict[str, float]:
        """The final round's row-weighted metrics over every silo's held-out rows."""
        return dict(self.report["rounds"][-1].get("global", {})) if self.report["rounds"] else {}

    @property
    def privacy(self) -> dict[str, Any] | None:
        """Epsilon, delta and how they were computed (None without DP)."""
        return self.report.get("privacy")


def _require_flower() -> None:
    try:
        import flwr  # noqa: F401
    except ImportError as exc:
        raise InvalidInputError(
            "federated training needs Flower: pip install 'shipyard[federated]'"
        ) from exc


def train(
    silos: Mapping[str, Any],
    job: FederatedConfig,
    *,
    register: str | None = None,
    experiment: str = "federated",
    run_name: str | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> FederatedResult:
    """Train across ``silos`` (name → DataFrame or Parquet/CSV path) in one process, each
    silo behind its own Flower ClientApp, and register the result when ``register`` is set."""
    _require_flower()
    from shipyard.federated import flower
    from shipyard.federated.simulation import LocalGrid, coordinator_context, node_context

    if len(silos) < job.min_silos:
        raise InvalidInputError(f"{len(silos)} silo(s) given; the job needs {job.min_silos}")
    data = {}
    for name, source in silos.items():
        check_silo_name(name)
        if isinstance(source, (str, Path)):
            data[name] = trainer.load_silo(name, source, job.label, job.holdout, job.seed)
        else:
            data[name] = trainer.split_silo(name, source, job.label, job.holdout, job.seed)
    job_run = start(job, len(data), experiment, run_name)
    run_config = {"job": job.to_json(), "shipyard-run": job_run.run_id}
    contexts = {
        1000 + i: node_context(1000 + i, name, run_config) for i, name in enumerate(sorted(data))
    }
    grid = LocalGrid(flower.client_app, contexts)
    flower.IN_PROCESS.update(data)
    try:
        report = flower.train(
            grid, coordinator_context(run_config), job, len(data), job_run.round_hook(on_round)
        )
        report["runtime"] = "flower, one process (shipyard.federated.simulation)"
    except BaseException:
        job_run.fail()
        raise
    finally:
        grid.close()
        for name in data:
            flower.IN_PROCESS.pop(name, None)
    return job_run.finish(report, register)


class JobRun:
    """The tracked side of a job: parent run, a child run per round, the report."""

    def __init__(self, backend: Any, run_id: str, experiment_id: str) -> None:
        self.backend = backend
        self.run_id = run_id
        self.experiment_id = experiment_id

    def round_hook(
        self, also: Callable[[dict[str, Any]], None] | None
    ) -> Callable[[dict[str, Any]], None]:
        """Record a round as a child run (and tell ``also``, e.g. a progress bar)."""
        tracking = self.backend.tracking

        def hook(entry: dict[str, Any]) -> None:
            r = int(entry["round"])
            now = int(time.time() * 1000)
            points = [Point(k, float(v), r, now) for k, v in entry.get("global", {}).items()]
            for silo, metrics in entry.get("silos", {}).items():
                points += [
                    Point(f"silo.{silo}.{k}", float(v), r, now)
                    for k, v in metrics.items()
                    if isinstance(v, (int, float)) and np.isfinite(v)
                ]
            points = [p for p in points if np.isfinite(p.value)]
            child = tracking.create_run(
                self.experiment_id,
                name=f"round-{r}",
                parent_id=self.run_id,
                tags={
                    "shipyard.federated.round": r,
                    "shipyard.federated.trained": ",".join(sorted(entry.get("trained", {}))),
                    "shipyard.federated.evaluated": ",".join(sorted(entry.get("silos", {}))),
                },
            )
            tracking.log_batch(
                child.id,
                [*points, Point("seconds", float(entry.get("seconds", 0.0)), r, now)],
                params={"round": r},
            )
            tracking.end_run(child.id, RunStatus.FINISHED)
            # The parent's history gives the curves (one point per round).
            tracking.log_batch(self.run_id, [p for p in points if "." not in p.key])
            if also is not None:
                also(entry)

        return hook

    def fail(self, reason: str | None = None) -> None:
        if reason:
            self.backend.tracking.log_batch(
                self.run_id, tags={"shipyard.federated.error": reason[:4000]}
            )
        self.backend.tracking.end_run(self.run_id, RunStatus.FAILED)

    def finish(self, report: dict[str, Any], register: str | None) -> FederatedResult:
        """Keep the report, build the global model, register it, end the run."""
        try:
            kept = self.keep(report)
            model = model_of(kept)
        except BaseException:
            self.fail()
            raise
        result = FederatedResult(self.run_id, kept, model)
        if register:
            result.model_version = register_global(result, register)
        self.backend.tracking.end_run(self.run_id, RunStatus.FINISHED)
        return result

    def keep(self, report: dict[str, Any]) -> dict[str, Any]:
        """The report (global weights included, as lists) in the run, its final metrics and
        the silos' data in lineage."""
        tracking = self.backend.tracking
        kept = {k: v for k, v in report.items() if k != "weights"}
        kept["global_weights"] = {
            "coef": report["weights"][0],
            "intercept": report["weights"][1],
        }
        tracking.log_bytes(
            self.run_id, json.dumps(kept, indent=2, default=str).encode(), FEDERATED_REPORT
        )
        final = report["rounds"][-1].get("global", {}) if report["rounds"] else {}
        now = int(time.time() * 1000)
        points = [Point(f"final_{k}", float(v), 0, now) for k, v in final.items() if np.isfinite(v)]
        privacy = report.get("privacy")
        if privacy:
            points.append(Point("dp_epsilon", float(privacy["epsilon"]), 0, now))
        tracking.log_batch(
            self.run_id, points, tags={"shipyard.federated.silos": len(report["silos"])}
        )
        self._lineage(report)
        return kept

    def _lineage(self, report: dict[str, Any]) -> None:
        edges = [
            (
                f"dataset:silo/{name}@sha256:{info['fingerprint']['sha256']}",
                f"run:{self.run_id}",
                "federated_training_data",
            )
            for name, info in report["silos"].items()
        ]
        self.backend.pipelines.store.add_edges(edges)


def model_of(report: dict[str, Any]) -> Any:
    """The scikit-learn pipeline of a kept report's global weights and pooled scaler."""
    weights = [
        np.asarray(report["global_weights"]["coef"], dtype=np.float64),
        np.asarray(report["global_weights"]["intercept"], dtype=np.float64),
    ]
    return trainer.to_estimator(
        weights, report["columns"], report["scaler"]["mean"], report["scaler"]["scale"]
    )


def attach(run_id: str) -> JobRun:
    """The job run another process opened (a Flower deployment's ServerApp records into it)."""
    from shipyard.sdk import context

    backend = context.current().get_backend()
    run = backend.tracking.get_run(run_id)
    return JobRun(backend, run.id, run.experiment_id)


def start(job: FederatedConfig, n_silos: int, experiment: str, run_name: str | None) -> JobRun:
    """Check the privacy plan, then open the job's run with its settings as params."""
    from shipyard.sdk import context

    planned = None
    if job.dp is not None:
        from shipyard.federated.privacy import Accounting

        planned = Accounting(job.dp, n_silos).check_plan(job.rounds)
    backend = context.current().get_backend()
    tracking = backend.tracking
    parent = tracking.create_run(
        experiment,
        name=run_name or f"federated-{job.strategy}",
        tags={RUN_TAG: "flower"},
    )
    params: dict[str, Any] = {
        "strategy": job.strategy,
        "rounds": job.rounds,
        "local_epochs": job.local_epochs,
        "learning_rate": job.learning_rate,
        "batch_size": job.batch_size,
        "model": job.model,
        "silos": n_silos,
        "round_timeout": job.round_timeout,
        "secure_aggregation": job.secure_aggregation.protocol if job.secure_aggregation else "off",
        "dp": job.dp.mode if job.dp else "off",
    }
    if job.strategy == "fedprox":
        params["proximal_mu"] = job.proximal_mu
    if job.dp is not None:
        params.update(
            dp_noise_multiplier=job.dp.noise_multiplier,
            dp_clipping_norm=job.dp.clipping_norm,
            dp_delta=job.dp.delta,
            dp_planned_epsilon=round(planned or 0.0, 4),
        )
    tracking.log_batch(parent.id, params=params)
    return JobRun(backend, parent.id, parent.experiment_id)


def register_global(result: FederatedResult, name: str) -> Any:
    """Register the global model as a candidate; its input example is the pooled column
    means (one synthetic row: no silo's row reaches the coordinator)."""
    import pandas as pd

    from shipyard.sdk.registry import register_model

    report = result.report
    example = pd.DataFrame([report["scaler"]["mean"]], columns=report["columns"])
    privacy = report.get("privacy")
    tags: dict[str, object] = {
        "shipyard.federated.silos": ",".join(report["silos"]),
        "shipyard.federated.strategy": report["job"]["strategy"],
    }
    if privacy:
        tags["shipyard.federated.dp_epsilon"] = privacy["epsilon"]
        tags["shipyard.federated.differentially_private"] = privacy["differentially_private"]
    final = result.global_metrics
    return register_model(
        name,
        result.model,
        example,
        run_id=result.run_id,
        description=(
            f"Federated {report['job']['strategy']} over {len(report['silos'])} silos, "
            f"{len(report['rounds'])} rounds; ROC AUC {final.get('roc_auc', float('nan')):.4f} "
            "on the silos' held-out rows"
        ),
        tags=tags,
    )
