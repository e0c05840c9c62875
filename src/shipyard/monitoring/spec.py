"""Monitor declarations: YAML (``kind: Monitor``) or the same as Python objects.

```yaml
kind: Monitor
name: fraud-live
deployment: fraud-live          # the model server's deployment (prediction log)
model: models:/fraud@champion   # its training data is the default reference
window: {every: 1h}             # or 1d, 15m; or {rows: 10000}: the last 10,000 predictions
reference: {kind: training}     # or {kind: file, path: ref.parquet}, or a past stretch of
                                # production: {kind: window, start: ..., end: ...}
drift: {method: auto, drift_share: 0.5}
quality: {max_null_rate: 0.05, max_out_of_range: 0.01, max_unseen: 0.01, min_rows: 100}
performance: {metrics: {roc_auc: {min: 0.75}, recall: {min: 0.2}}, threshold: 0.5,
              min_labels: 50, sensitive: age_band}
alerts:
  - {name: drift, check: feature_drift, for: 2, severity: warning, notify: [ops],
     retrain: "my_project.pipelines:fraud_training"}
notifiers:
  ops: {type: webhook, url: "https://hooks.example.com/T000", format: slack}
```
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shipyard.core.errors import InvalidInputError
from shipyard.drift.methods import DriftMethodName
from shipyard.monitoring.alerts import AlertRule

#: A reference file stored as a blob (sent through a server): ``blob:<sha256>``.
BLOB = "blob:"
_EVERY = re.compile(r"^(\d{1,4})([mhd])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSpec(_Spec):
    """How production traffic is cut into windows."""

    every: str = "1h"
    rows: int | None = Field(default=None, ge=10, le=100_000_000)  # or: the last N predictions

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        if not _EVERY.match(value) or int(value[:-1]) == 0:
            raise ValueError("window.every looks like 15m, 1h or 1d")
        return value

    @property
    def seconds(self) -> int:
        """The window length in seconds."""
        match = _EVERY.match(self.every)
        if match is None:  # the field validator accepted it, so this is a bug
            raise InvalidInputError(f"every must look like 1d, 6h or 30m; got {self.every!r}")
        return int(match.group(1)) * _UNIT_S[match.group(2)]


class ReferenceSpec(_Spec):
    """What production is compared with."""

    kind: Literal["training", "file", "window"] = "training"
    path: str | None = None
    start: datetime | None = None  # kind window: a past stretch of production traffic
    end: datetime | None = None

    @model_validator(mode="after")
    def _complete(self) -> ReferenceSpec:
        if self.kind == "file" and not self.path:
            raise ValueError("reference kind file needs a path")
        if self.kind == "window" and (
            self.start is None or self.end is None or self.end <= self.start
        ):
            raise ValueError("reference kind window needs start < end")
        return self


class DriftSpec(_Spec):
    """Per-column drift (Evidently's tests by default) and drift of the score."""

    method: DriftMethodName = "auto"
    threshold: float | None = None
    drift_share: float = Field(default=0.5, gt=0, le=1)
    score: bool = True  # also the drift of the positive-class score


class QualitySpec(_Spec):
    """Data quality of the inputs the model received."""

    max_null_rate: float = Field(default=0.05, ge=0, le=1)
    max_out_of_range: float = Field(default=0.01, ge=0, le=1)
    max_unseen: float = Field(default=0.01, ge=0, le=1)
    min_rows: int = Field(default=1, ge=0)
    max_rows: int | None = Field(default=None, ge=1)


class HealthSpec(_Spec):
    """Latency and error-rate limits, judged per window from the prediction log (the model
    server logs failed requests beside its predictions)."""

    # Read once from the model server's counters; the log now holds what it gave, per window.
    metrics_url: str | None = Field(default=None, deprecated="not read: see the prediction log")
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_p99: float | None = Field(default=None, gt=0)  # seconds


class Bounds(_Spec):
    """A metric's acceptable range."""

    min: float | None = None
    max: float | None = None


class PerformanceSpec(_Spec):
    """Quality of predictions once labels arrive (feedback)."""

    metrics: dict[str, Bounds] = Field(default_factory=lambda: {"roc_auc": Bounds(min=0.7)})
    threshold: float = Field(default=0.5, gt=0, lt=1)
    min_labels: int = Field(default=50, ge=1)
    sensitive: str | None = None

    @field_validator("metrics")
    @classmethod
    def _known(cls, value: dict[str, Bounds]) -> dict[str, Bounds]:
        from shipyard.gates.policy import METRICS

        unknown = sorted(set(value) - set(METRICS) - {"calibration_error"})
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; use one of {', '.join(METRICS)}")
        return value


class NotifierSpec(_Spec):
    """Where alerts go: a webhook (JSON or Slack format), the log, or email."""

    type: Literal["webhook", "log", "email"]
    url: str | None = None
    format: Literal["json", "slack"] = "json"
    timeout: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(default=3, ge=0, le=10)
    host: str | None = None
    port: int = 25
    sender: str | None = None
    to: list[str] = Field(default_factory=list)


class MonitorSettings(_Spec):
    """What a monitor watches and judges (a project spec's Monitor document declares this;
    its alert rules and notifiers are documents of their own there)."""

    deployment: str
    model: str | None = None
    features: list[str] | None = None
    window: WindowSpec = Field(default_factory=WindowSpec)
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    drift: DriftSpec | None = Field(default_factory=DriftSpec)
    quality: QualitySpec | None = Field(default_factory=QualitySpec)
    performance: PerformanceSpec | None = None
    health: HealthSpec = Field(default_factory=HealthSpec)


class MonitorSpec(MonitorSettings):
    """One monitor of one deployment."""

    kind: Literal["Monitor"] = "Monitor"
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
    alerts: list[AlertRule] = Field(default_factory=list)
    notifiers: dict[str, NotifierSpec] = Field(default_factory=dict)


def parse_monitor(data: object) -> MonitorSpec:
    """A monitor from a dict, with one clear line on the first problem."""
    if isinstance(data, MonitorSpec):
        return data
    try:
        return MonitorSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInputError(f"monitor: {where + ': ' if where else ''}{msg}") from None


def load_monitor(path: str | Path) -> MonitorSpec:
    """A monitor from a YAML file."""
    file = Path(path)
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read monitor {file}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"monitor {file} is not valid YAML: {exc}") from None
    return parse_monitor(data)
