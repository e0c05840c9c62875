"""Gate policies: YAML (or the same as Python objects) naming the checks and thresholds.

```yaml
label: is_fraud
threshold: 0.5            # decision threshold on the positive-class score, or
# flag_rate: 0.02          # flag the top 2% of scores (an alert budget), per model
checks:
  - metric: roc_auc
    min: 0.85
  - champion_challenger: {metric: roc_auc, max_drop: 0.01, confidence: 0.95}
  - fairness: {sensitive: age_band, reference: "30-49", adverse_impact_ratio_min: 0.8}
  - data_validation: {schema: training}
  - drift: {reference: training, method: psi, max: 0.2}
  - custom: {function: "my_checks:no_negative_scores"}
```
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.core.errors import InvalidInputError
from shipyard.drift.methods import DriftMethodName

#: Metrics with a built-in implementation; ``module:function`` names a custom one.
METRICS = {
    "accuracy": "higher",
    "roc_auc": "higher",
    "pr_auc": "higher",
    "f1": "higher",
    "precision": "higher",
    "recall": "higher",
    "recall_at_precision": "higher",
    "log_loss": "lower",
    "brier": "lower",
    "rmse": "lower",
    "mae": "lower",
    "r2": "higher",
}


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, max_length=200)


def _check_metric(metric: str) -> str:
    if metric in METRICS or (":" in metric and all(metric.split(":", 1))):
        return metric
    raise ValueError(
        f"unknown metric {metric!r}; use one of {', '.join(METRICS)} or 'module:function'"
    )


class MetricCheck(_Check):
    """A metric of the candidate on the evaluation data, within bounds."""

    kind: Literal["metric"] = "metric"
    metric: str
    min: float | None = None
    max: float | None = None
    precision: float | None = Field(default=None, gt=0, le=1)  # for recall_at_precision

    @model_validator(mode="after")
    def _valid(self) -> MetricCheck:
        _check_metric(self.metric)
        if self.min is None and self.max is None:
            raise ValueError(f"metric {self.metric}: give min, max or both")
        if self.metric == "recall_at_precision" and self.precision is None:
            raise ValueError("recall_at_precision needs precision (e.g. 0.9)")
        return self


class ChampionChallengerCheck(_Check):
    """The candidate against the version holding ``alias``, with a bootstrap interval."""

    kind: Literal["champion_challenger"] = "champion_challenger"
    metric: str = "roc_auc"
    max_drop: float = Field(default=0.0, ge=0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    resamples: int = Field(default=1000, ge=100, le=100_000)
    alias: str = "champion"
    seed: int = 0

    @model_validator(mode="after")
    def _valid(self) -> ChampionChallengerCheck:
        _check_metric(self.metric)
        if ":" in self.metric:
            raise ValueError("champion_challenger compares built-in metrics only")
        return self


class FairnessCheck(_Check):
    """Group metrics by sensitive attribute at the decision threshold (fairlearn)."""

    kind: Literal["fairness"] = "fairness"
    sensitive: str | list[str]
    reference: str | None = None
    favourable: int | str | None = None  # the outcome a person wants (default: see docs)
    adverse_impact_ratio_min: float | None = Field(default=None, gt=0, le=1)
    equalized_odds_difference_max: float | None = Field(default=None, ge=0, le=1)
    demographic_parity_ratio_min: float | None = Field(default=None, gt=0, le=1)
    min_group_size: int = Field(default=30, ge=1)

    @property
    def attributes(self) -> list[str]:
        """The sensitive columns as a list."""
        return [self.sensitive] if isinstance(self.sensitive, str) else list(self.sensitive)

    @model_validator(mode="after")
    def _valid(self) -> FairnessCheck:
        if self.adverse_impact_ratio_min is not None and self.reference is None:
            raise ValueError("adverse_impact_ratio_min needs a reference group")
        return self


class DataValidationCheck(_Check):
    """The evaluation data against a schema inferred from the training data (pandera)."""

    kind: Literal["data_validation"] = "data_validation"
    schema_: Literal["training"] = Field(default="training", alias="schema")
    max_failure_rate: float = Field(default=0.01, ge=0, le=1)
    null_rate_slack: float = Field(default=0.01, ge=0, le=1)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DriftCheck(_Check):
    """Drift of each feature between the training data and the evaluation data."""

    kind: Literal["drift"] = "drift"
    reference: Literal["training"] = "training"
    method: DriftMethodName = "psi"
    max: float | None = None  # the threshold (a p-value for ks/chisquare/z)
    columns: list[str] | None = None
    max_drifted_share: float = Field(default=0.0, ge=0, le=1)


class PrivacyCheck(_Check):
    """The version's recorded differential privacy (a federated job's accountant) is within
    ``max_epsilon`` at at most ``max_delta``; a version with no DP record fails."""

    kind: Literal["privacy"] = "privacy"
    max_epsilon: float = Field(gt=0)
    max_delta: float = Field(default=1e-5, gt=0, lt=1)


class SilosCheck(_Check):
    """Per-silo evaluation of a federated model (each silo's held-out rows, as its silo
    reported them): every silo's ``metric`` at least ``min``, the spread between the best
    and worst silo at most ``max_gap``, and fairness across silos at the decision threshold
    (equalized odds difference, demographic parity ratio)."""

    kind: Literal["silos"] = "silos"
    metric: Literal["roc_auc", "accuracy", "log_loss"] = "roc_auc"
    min: float | None = None
    max_gap: float | None = Field(default=None, ge=0)
    equalized_odds_difference_max: float | None = Field(default=None, ge=0, le=1)
    demographic_parity_ratio_min: float | None = Field(default=None, gt=0, le=1)


class CustomCheck(_Check):
    """``function(context) -> bool | dict``: a Python function named ``module:function``."""

    kind: Literal["custom"] = "custom"
    function: str = Field(pattern=r"^[\w.]+:\w+$")
    params: dict[str, Any] = Field(default_factory=dict)


Check = Annotated[
    MetricCheck
    | ChampionChallengerCheck
    | FairnessCheck
    | DataValidationCheck
    | DriftCheck
    | PrivacyCheck
    | SilosCheck
    | CustomCheck,
    Field(discriminator="kind"),
]
KINDS = (
    "metric",
    "champion_challenger",
    "fairness",
    "data_validation",
    "drift",
    "privacy",
    "silos",
    "custom",
)


class GatePolicy(BaseModel):
    """The checks a version must pass, on evaluation data with a ``label`` column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    threshold: float = Field(default=0.5, gt=0, lt=1)
    # Fraud teams decide by alert budget: flag this share of the evaluation rows (per model,
    # at its own score quantile) instead of a fixed score threshold.
    flag_rate: float | None = Field(default=None, gt=0, lt=1)
    checks: list[Check] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: Any) -> Any:
        """Accept the YAML shapes: ``{metric: auc, min: ..}`` and ``{fairness: {...}}``."""
        if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
            return data
        checks = []
        for i, item in enumerate(data["checks"]):
            if not isinstance(item, dict):
                raise ValueError(f"checks[{i}] must be a mapping, got {type(item).__name__}")
            if "kind" in item:
                checks.append(item)
            elif "metric" in item:
                checks.append({"kind": "metric", **item})
            elif len(item) == 1:
                ((kind, params),) = item.items()
                if kind not in KINDS:
                    raise ValueError(
                        f"checks[{i}]: unknown check {kind!r}; known: {', '.join(KINDS)}"
                    )
                checks.append({"kind": kind, **(params or {})})
            else:
                raise ValueError(f"checks[{i}]: one check per item, got keys {sorted(item)}")
        return {**data, "checks": checks}

    @property
    def digest(self) -> str:
        """sha256 of the policy's canonical JSON: which rules a report applied."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def check_name(self, index: int) -> str:
        """A check's display name: its own, or kind plus its main parameter."""
        check = self.checks[index]
        if check.name:
            return check.name
        if isinstance(check, MetricCheck | ChampionChallengerCheck):
            return f"{check.kind}:{check.metric}"
        if isinstance(check, FairnessCheck):
            return f"fairness:{','.join(check.attributes)}"
        if isinstance(check, DriftCheck):
            return f"drift:{check.method}"
        if isinstance(check, CustomCheck):
            return f"custom:{check.function}"
        return check.kind


def parse_policy(data: object) -> GatePolicy:
    """A policy from a dict (parsed YAML), with one clear line on the first problem."""
    if isinstance(data, GatePolicy):
        return data
    try:
        return GatePolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if not str(p).startswith("function-"))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInputError(f"gate policy: {where + ': ' if where else ''}{msg}") from None


def load_policy(path: str | Path) -> GatePolicy:
    """A policy from a YAML file."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise InvalidInputError(f"cannot read gate policy {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"gate policy {file} is not a UTF-8 text (YAML) file") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"gate policy {file} is not valid YAML: {exc}") from None
    return parse_policy(data)
