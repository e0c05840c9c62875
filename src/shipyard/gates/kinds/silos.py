"""silos: per-silo evaluation and fairness across the silos of a federated model."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from shipyard.gates.kinds._base import CheckSpec
from shipyard.gates.kinds.privacy import federated_record
from shipyard.gates.report import CheckResult

if TYPE_CHECKING:
    from shipyard.gates.checks import GateContext


class SilosCheck(CheckSpec):
    """Per-silo evaluation of a federated model (each silo's held-out rows, as its silo
    reported them): every silo's ``metric`` at least ``min``, the spread between the best
    and worst silo at most ``max_gap``, and fairness across silos at the decision threshold
    (equalized odds difference, demographic parity ratio)."""

    kind: Literal["silos"] = "silos"
    order: ClassVar[int] = 70
    metric: Literal["roc_auc", "accuracy", "log_loss"] = "roc_auc"
    min: float | None = None
    max_gap: float | None = Field(default=None, ge=0)
    equalized_odds_difference_max: float | None = Field(default=None, ge=0, le=1)
    demographic_parity_ratio_min: float | None = Field(default=None, gt=0, le=1)

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check on the gate's data."""
        return _silos(self, name, ctx)


def _silos(check: SilosCheck, name: str, ctx: GateContext) -> CheckResult:
    per_silo = federated_record(ctx).get("per_silo") or {}
    if not per_silo:
        return CheckResult(
            name, "silos", "failed", "this version records no per-silo evaluation", None, ""
        )
    values = {s: float(m.get(check.metric, float("nan"))) for s, m in per_silo.items()}
    problems, limits = [], []
    lower_is_better = check.metric == "log_loss"
    worst = max(values, key=values.get) if lower_is_better else min(values, key=values.get)  # type: ignore[arg-type]
    if check.min is not None:
        limits.append(f"each silo's {check.metric} >= {check.min:g}")
        low = [s for s, v in values.items() if not v >= check.min]
        if low:
            problems.append(
                ", ".join(f"{s} {values[s]:.4f}" for s in low) + f" below {check.min:g}"
            )
    gap = max(values.values()) - min(values.values())
    if check.max_gap is not None:
        limits.append(f"gap <= {check.max_gap:g}")
        if not gap <= check.max_gap:
            problems.append(f"{check.metric} gap {gap:.4f} above {check.max_gap:g}")
    tpr = [float(m["true_positive_rate"]) for m in per_silo.values() if "true_positive_rate" in m]
    fpr = [float(m["false_positive_rate"]) for m in per_silo.values() if "false_positive_rate" in m]
    rates = [float(m["selection_rate"]) for m in per_silo.values() if "selection_rate" in m]
    eod = max(max(tpr) - min(tpr), max(fpr) - min(fpr)) if tpr and fpr else float("nan")
    dpr = (min(rates) / max(rates)) if rates and max(rates) > 0 else float("nan")
    if check.equalized_odds_difference_max is not None:
        limits.append(f"equalized odds difference <= {check.equalized_odds_difference_max:g}")
        if not eod <= check.equalized_odds_difference_max:
            problems.append(f"equalized odds difference across silos {eod:.4f}")
    if check.demographic_parity_ratio_min is not None:
        limits.append(f"demographic parity ratio >= {check.demographic_parity_ratio_min:g}")
        if not dpr >= check.demographic_parity_ratio_min:
            problems.append(f"demographic parity ratio across silos {dpr:.4f}")
    ok = not problems
    summary = (
        f"{len(values)} silos; worst {worst} {check.metric} {values[worst]:.4f}, gap {gap:.4f}"
    )
    return CheckResult(
        name,
        "silos",
        "passed" if ok else "failed",
        summary if ok else f"{summary}: " + "; ".join(problems),
        values[worst],
        " and ".join(limits),
        {
            "silos": per_silo,
            "gap": gap,
            "equalized_odds_difference": eod,
            "demographic_parity_ratio": dpr,
        },
    )


CHECK = SilosCheck
