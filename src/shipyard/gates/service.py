"""GateService: evaluate a model version against a policy, store and return the report."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.actor import current_actor
from shipyard.core.audit import NULL_AUDIT, AuditLog
from shipyard.core.clock import now_ms
from shipyard.core.errors import InvalidInputError
from shipyard.core.ids import new_id
from shipyard.gates.checks import GateContext, model_outputs, run_check
from shipyard.gates.kinds.champion_challenger import ChampionChallengerCheck
from shipyard.gates.policy import GatePolicy, parse_policy
from shipyard.gates.ports import GateReportStore, newest_report
from shipyard.gates.report import CheckResult, GateReport
from shipyard.registry.models import check_alias
from shipyard.registry.ports import ModelRegistry

logger = logging.getLogger(__name__)

#: Where ``register_model(..., training_data=df)`` keeps the training data, in the run.
TRAINING_DATA = "data/training.parquet"


def frame_digest(frame: pd.DataFrame) -> str:
    """sha256 over the frame's column names and row hashes: which data a report saw."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


class GateService:
    """Quality gates over the registry: evaluate, store, look up."""

    def __init__(
        self, registry: ModelRegistry, store: GateReportStore, audit: AuditLog | None = None
    ) -> None:
        self.registry = registry
        self.store = store
        self.audit: AuditLog = audit or NULL_AUDIT

    def training_data(self, name: str, version: int | str) -> pd.DataFrame | None:
        """The training data stored with the version's run, if any."""
        mv = self.registry.get_version(name, version)
        names = {a.name for a in self.registry.tracking.list_artifacts(mv.run_id)}
        if TRAINING_DATA not in names:
            return None
        with tempfile.TemporaryDirectory(prefix="shipyard-gate-") as tmp:
            path = self.registry.tracking.download_artifact(mv.run_id, TRAINING_DATA, Path(tmp))
            return pd.read_parquet(path)

    def evaluate(
        self,
        name: str,
        version: int | str,
        policy: GatePolicy | dict[str, Any],
        data: pd.DataFrame,
        *,
        reference: pd.DataFrame | None = None,
        actor: str | None = None,
        trusted: bool = False,
    ) -> GateReport:
        """Run every check of ``policy`` on ``data`` and store the report on the version."""
        started = time.perf_counter()
        rules = parse_policy(policy)
        mv = self.registry.get_version(name, version)
        if rules.label not in data.columns:
            raise InvalidInputError(
                f"the evaluation data has no label column {rules.label!r}", column=rules.label
            )
        if data.empty:
            raise InvalidInputError("the evaluation data has no rows")
        model, _ = self.registry.load(mv.uri, trusted=trusted)
        features = list(model.signature.input_names)
        missing = [c for c in features if c not in data.columns]
        if missing:
            raise InvalidInputError(
                f"the evaluation data lacks model input column(s) {', '.join(missing[:10])}",
                columns=",".join(missing[:10]),
            )
        labels = data[rules.label]
        if labels.isna().any():
            raise InvalidInputError(f"label column {rules.label!r} has missing values")
        y_true = labels.to_numpy()
        if y_true.dtype == bool:
            y_true = y_true.astype("int64")
        outputs = model_outputs(model, data[features], rules)
        if reference is None and _needs_reference(rules):
            reference = self.training_data(mv.name, mv.version)
        champion, holder = self._champion(rules, mv.name, mv.version, trusted)
        ctx = GateContext(
            policy=rules,
            model_name=mv.name,
            version=mv.version,
            model=model,
            data=data,
            features=features,
            y_true=np.asarray(y_true),
            candidate=outputs,
            reference=reference,
            champion=champion,
            alias_holder=holder,
            use_case=self.registry.get_model(mv.name).tags.get("use_case"),
            card=dict(mv.card or {}),
        )
        results: list[CheckResult] = [run_check(i, ctx) for i in range(len(rules.checks))]
        report = GateReport(
            id=new_id("gate"),
            model=mv.name,
            version=mv.version,
            passed=not any(r.failed for r in results),
            policy=rules.model_dump(mode="json", by_alias=True),
            policy_digest=rules.digest,
            data_digest=frame_digest(data),
            rows=len(data),
            checks=results,
            created_by=actor or current_actor(),
            created_at=now_ms(),
            seconds=round(time.perf_counter() - started, 3),
            verified=True,
        )
        return self.save(report)

    def save(self, report: GateReport) -> GateReport:
        """Store a report on its version and audit it; return it as stored.

        A report handed in from outside (a client's) is stored as not verified.
        """
        with self.audit.atomic():
            report = self.store.add_report(report)
            self.audit.record(
                "gate.evaluated",
                f"models:/{report.model}/{report.version}",
                {
                    "report": report.id,
                    "passed": report.passed,
                    "policy": report.policy_digest,
                    "data": report.data_digest,
                    "rows": report.rows,
                    "failed": [c.name for c in report.failed_checks],
                    "verified": report.verified,
                },
            )
        return report

    def _champion(
        self, rules: GatePolicy, name: str, version: int, trusted: bool
    ) -> tuple[tuple[int, Any] | None, int | None]:
        """The champion to compare with (if any other version holds the alias) and its number."""
        aliases = {c.alias for c in rules.checks if isinstance(c, ChampionChallengerCheck)}
        if not aliases:
            return None, None
        if len(aliases) > 1:
            raise InvalidInputError("champion_challenger checks must all name the same alias")
        alias = check_alias(aliases.pop())
        held = self.registry.get_model(name).aliases.get(alias)
        if held is None or held == version:
            return None, held
        champion, _ = self.registry.load(f"models:/{name}/{held}", trusted=trusted)
        return (held, champion), held

    def reports(self, name: str, version: int | None = None) -> list[GateReport]:
        """Stored reports, newest first."""
        self.registry.get_model(name)
        return self.store.list_reports(name, version)

    def latest(self, name: str, version: int, *, verified: bool = False) -> GateReport:
        """The newest report of one version (``verified``: that the store computed).

        Raises:
            NotFoundError: the version was never gated (or never by the store).
        """
        return newest_report(
            self.store.list_reports(name, version), name, version, verified=verified
        )


def _needs_reference(rules: GatePolicy) -> bool:
    return any(c.kind in {"data_validation", "drift"} for c in rules.checks)
