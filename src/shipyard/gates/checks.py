"""What every check sees (GateContext, the model's outputs) and how one is run; the kinds
themselves live in :mod:`shipyard.gates.kinds`, one module each."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.gates.policy import GatePolicy
from shipyard.gates.report import CheckResult

Array = np.ndarray[Any, Any]


@dataclass
class Outputs:
    """A model's outputs on the evaluation rows: positive-class score and decision."""

    score: Array | None
    pred: Array
    threshold: float | None = None  # the score cut that made ``pred``


def model_outputs(model: Any, features: pd.DataFrame, policy: GatePolicy) -> Outputs:
    """Score and decide: binary classifiers at the policy's threshold (or at the score that
    flags ``flag_rate`` of the rows), others by ``predict``."""
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(features))
        if proba.ndim == 2 and proba.shape[1] == 2:
            score = proba[:, 1].astype("float64")
            cut = policy.threshold
            if policy.flag_rate is not None:
                cut = float(np.quantile(score, 1 - policy.flag_rate))
            return Outputs(score, (score >= cut).astype("int64"), cut)
    return Outputs(None, np.asarray(model.predict(features)))


@dataclass
class GateContext:
    """Everything a check may look at; custom checks receive it too."""

    policy: GatePolicy
    model_name: str
    version: int
    model: Any
    data: pd.DataFrame
    features: list[str]
    y_true: Array
    candidate: Outputs
    reference: pd.DataFrame | None = None
    champion: tuple[int, Any] | None = None  # (version, loaded model)
    alias_holder: int | None = None  # the version the champion alias points at
    use_case: str | None = None
    card: dict[str, Any] = field(default_factory=dict)  # the version's model card
    _champion_outputs: Outputs | None = field(default=None, repr=False)

    def champion_outputs(self) -> Outputs | None:
        """The champion's outputs on the same rows (computed once)."""
        if self.champion is None:
            return None
        if self._champion_outputs is None:
            champion = self.champion[1]
            names = list(champion.signature.input_names)
            missing = [c for c in names if c not in self.data.columns]
            if missing:
                raise InvalidInputError(
                    f"the evaluation data lacks the champion's input column(s) "
                    f"{', '.join(missing[:10])}"
                )
            self._champion_outputs = model_outputs(champion, self.data[names], self.policy)
        return self._champion_outputs

    def need_reference(self, what: str) -> pd.DataFrame:
        """The training data, or a clear error saying how to provide it."""
        if self.reference is None:
            raise InvalidInputError(
                f"{what} needs the training data: register the model with training_data=... "
                "or pass --reference PATH"
            )
        return self.reference


def run_check(index: int, ctx: GateContext) -> CheckResult:
    """Evaluate one check of the policy."""
    check = ctx.policy.checks[index]
    name = ctx.policy.check_name(index)
    started = time.perf_counter()
    result = check.run(name, ctx)
    return CheckResult(
        result.name,
        result.kind,
        result.status,
        result.message,
        result.value,
        result.threshold,
        result.details,
        round(time.perf_counter() - started, 4),
    )


def bounds(value: float, low: float | None, high: float | None) -> tuple[bool, str]:
    """Whether ``value`` lies within the bounds, and the bounds as words."""
    ok = (low is None or value >= low) and (high is None or value <= high)
    parts = ([f">= {low:g}"] if low is not None else []) + (
        [f"<= {high:g}"] if high is not None else []
    )
    return ok, " and ".join(parts)
