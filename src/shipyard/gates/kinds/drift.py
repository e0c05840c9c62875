"""drift: each feature's drift between the training data and the evaluation data."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from shipyard.drift.methods import DriftMethodName
from shipyard.gates.kinds._base import CheckSpec
from shipyard.gates.report import CheckResult

if TYPE_CHECKING:
    from shipyard.gates.checks import GateContext


class DriftCheck(CheckSpec):
    """Drift of each feature between the training data and the evaluation data."""

    kind: Literal["drift"] = "drift"
    order: ClassVar[int] = 50
    reference: Literal["training"] = "training"
    method: DriftMethodName = "psi"
    max: float | None = None  # the threshold (a p-value for ks/chisquare/z)
    columns: list[str] | None = None
    max_drifted_share: float = Field(default=0.0, ge=0, le=1)

    def label(self) -> str:
        """The check's display name when it has none."""
        return f"drift:{self.method}"

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check on the gate's data."""
        return _drift(self, name, ctx)


def _drift(check: DriftCheck, name: str, ctx: GateContext) -> CheckResult:
    from shipyard.drift.engine import PSI_BANDS, drift_report

    training = ctx.need_reference("drift")
    columns = check.columns or [c for c in ctx.features if c in training.columns]
    report = drift_report(training, ctx.data, columns, method=check.method, threshold=check.max)
    ok = report.drift_share <= check.max_drifted_share
    top = sorted(report.columns, key=lambda c: -(c.psi or 0.0))[:3]
    psi_note = ", ".join(f"{c.column} {c.psi:.3f}" for c in top if c.psi is not None)
    drifted = report.drifted_columns
    message = (
        f"{len(drifted)} of {len(report.columns)} columns drifted"
        + (f" ({', '.join(drifted[:5])})" if drifted else "")
        + f"; highest PSI: {psi_note} (bands {PSI_BANDS[0]:g}/{PSI_BANDS[1]:g})"
    )
    return CheckResult(
        name,
        "drift",
        "passed" if ok else "failed",
        message,
        report.drift_share,
        f"drifted share <= {check.max_drifted_share:g}",
        report.to_dict(),
    )


CHECK = DriftCheck
