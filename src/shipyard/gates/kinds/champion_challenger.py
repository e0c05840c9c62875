"""champion_challenger: the candidate against the version holding an alias, by a paired
bootstrap interval on the same rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from shipyard.gates.kinds._base import CheckSpec, check_metric
from shipyard.gates.report import CheckResult

if TYPE_CHECKING:
    from shipyard.gates.checks import GateContext


class ChampionChallengerCheck(CheckSpec):
    """The candidate against the version holding ``alias``, with a bootstrap interval."""

    kind: Literal["champion_challenger"] = "champion_challenger"
    order: ClassVar[int] = 20
    metric: str = "roc_auc"
    max_drop: float = Field(default=0.0, ge=0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    resamples: int = Field(default=1000, ge=100, le=100_000)
    alias: str = "champion"
    seed: int = 0

    @model_validator(mode="after")
    def _valid(self) -> ChampionChallengerCheck:
        check_metric(self.metric)
        if ":" in self.metric:
            raise ValueError("champion_challenger compares built-in metrics only")
        return self

    def label(self) -> str:
        """The check's display name when it has none."""
        return f"{self.kind}:{self.metric}"

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check on the gate's data."""
        return _champion(self, name, ctx)


def _champion(check: ChampionChallengerCheck, name: str, ctx: GateContext) -> CheckResult:
    from shipyard.gates.metrics import paired_bootstrap

    champ = ctx.champion_outputs()
    limit = f"lower bound >= -{check.max_drop:g}"
    if champ is None or ctx.champion is None:
        why = (
            f"this version holds alias {check.alias!r} itself"
            if ctx.alias_holder == ctx.version
            else f"no version holds alias {check.alias!r} yet"
        )
        return CheckResult(
            name, "champion_challenger", "skipped", f"{why}: nothing to compare with", None, limit
        )
    cand = ctx.candidate
    cmp = paired_bootstrap(
        check.metric,
        ctx.y_true,
        (cand.score, cand.pred),
        (champ.score, champ.pred),
        confidence=check.confidence,
        resamples=check.resamples,
        seed=check.seed,
    )
    ok = cmp.lower >= -check.max_drop
    details = {
        "champion_version": ctx.champion[0],
        "candidate": cmp.candidate,
        "champion": cmp.champion,
        "difference": cmp.difference,
        "interval": [cmp.lower, cmp.upper],
        "confidence": cmp.confidence,
        "resamples": cmp.resamples,
    }
    message = (
        f"{check.metric}: candidate {cmp.candidate:.4f} vs champion v{ctx.champion[0]} "
        f"{cmp.champion:.4f}; difference {cmp.difference:+.4f}, {cmp.confidence:.0%} interval "
        f"[{cmp.lower:+.4f}, {cmp.upper:+.4f}] (higher is better)"
    )
    return CheckResult(
        name,
        "champion_challenger",
        "passed" if ok else "failed",
        message,
        cmp.lower,
        limit,
        details,
    )


CHECK = ChampionChallengerCheck
