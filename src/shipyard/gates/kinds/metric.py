"""metric: a metric of the candidate on the evaluation data, within bounds."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from shipyard.gates.kinds._base import CheckSpec, check_metric
from shipyard.gates.report import CheckResult

if TYPE_CHECKING:
    from shipyard.gates.checks import GateContext


class MetricCheck(CheckSpec):
    """A metric of the candidate on the evaluation data, within bounds."""

    kind: Literal["metric"] = "metric"
    order: ClassVar[int] = 10
    metric: str
    min: float | None = None
    max: float | None = None
    precision: float | None = Field(default=None, gt=0, le=1)  # for recall_at_precision

    @model_validator(mode="after")
    def _valid(self) -> MetricCheck:
        check_metric(self.metric)
        if self.min is None and self.max is None:
            raise ValueError(f"metric {self.metric}: give min, max or both")
        if self.metric == "recall_at_precision" and self.precision is None:
            raise ValueError("recall_at_precision needs precision (e.g. 0.9)")
        return self

    def label(self) -> str:
        """The check's display name when it has none."""
        return f"{self.kind}:{self.metric}"

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check on the gate's data."""
        return _metric(self, name, ctx)


def _metric(check: MetricCheck, name: str, ctx: GateContext) -> CheckResult:
    from shipyard.gates.checks import bounds
    from shipyard.gates.metrics import metric_value

    out = ctx.candidate
    value = metric_value(check.metric, ctx.y_true, out.score, out.pred, precision=check.precision)
    ok, limit = bounds(value, check.min, check.max)
    verdict = "meets" if ok else "fails"
    return CheckResult(
        name,
        "metric",
        "passed" if ok else "failed",
        f"{check.metric} = {value:.4f} {verdict} {limit}",
        value,
        limit,
    )


CHECK = MetricCheck
