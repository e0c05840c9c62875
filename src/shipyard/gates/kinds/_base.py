"""What every gate check kind shares: the CheckSpec base and the built-in metric names."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from shipyard.gates.checks import GateContext
    from shipyard.gates.report import CheckResult

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


def check_metric(metric: str) -> str:
    """A built-in metric's name or ``module:function``; anything else is a ValueError."""
    if metric in METRICS or (":" in metric and all(metric.split(":", 1))):
        return metric
    raise ValueError(
        f"unknown metric {metric!r}; use one of {', '.join(METRICS)} or 'module:function'"
    )


class CheckSpec(BaseModel):
    """One check of a gate policy: its parameters (validated when the policy is read) and
    how it is evaluated. A module of :mod:`shipyard.gates.kinds` that defines
    ``CHECK = <subclass>`` adds a kind; nothing else needs to name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Where the kind is listed (help, errors): lower first.
    order: ClassVar[int] = 100

    kind: str
    name: str | None = Field(default=None, max_length=200)

    def label(self) -> str:
        """The check's display name when it has none of its own."""
        return self.kind

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check; heavy libraries are imported here, not when policies load."""
        raise NotImplementedError(f"check kind {self.kind!r} does not implement run")
