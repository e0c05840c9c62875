"""privacy: the version's recorded differential privacy (a federated job's accountant)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from shipyard.gates.kinds._base import CheckSpec
from shipyard.gates.report import CheckResult

if TYPE_CHECKING:
    from shipyard.gates.checks import GateContext


class PrivacyCheck(CheckSpec):
    """The version's recorded differential privacy (a federated job's accountant) is within
    ``max_epsilon`` at at most ``max_delta``; a version with no DP record fails."""

    kind: Literal["privacy"] = "privacy"
    order: ClassVar[int] = 60
    max_epsilon: float = Field(gt=0)
    max_delta: float = Field(default=1e-5, gt=0, lt=1)

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check on the gate's data."""
        return _privacy(self, name, ctx)


def federated_record(ctx: GateContext) -> dict[str, Any]:
    """The federated job's record in the version's card (empty for other models)."""
    return dict((ctx.card.get("model_parameters") or {}).get("federated") or {})


def _privacy(check: PrivacyCheck, name: str, ctx: GateContext) -> CheckResult:
    limit = f"epsilon <= {check.max_epsilon:g} at delta <= {check.max_delta:g}"
    privacy = federated_record(ctx).get("privacy")
    if not privacy:
        return CheckResult(
            name, "privacy", "failed", "this version records no differential privacy", None, limit
        )
    eps, delta = float(privacy["epsilon"]), float(privacy["delta"])
    ok = eps <= check.max_epsilon and delta <= check.max_delta
    return CheckResult(
        name,
        "privacy",
        "passed" if ok else "failed",
        f"epsilon {eps:g} at delta {delta:g} ({privacy.get('releases')} noised rounds, "
        f"per {privacy.get('unit')}) {'meets' if ok else 'fails'} {limit}",
        eps,
        limit,
        {"privacy": privacy},
    )


CHECK = PrivacyCheck
