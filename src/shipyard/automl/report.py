"""The search report: leaderboard, budget used, search space and the candidate's figures.

It is kept as an artifact of the search's run (``automl/search.json``) and, when the winner
is registered, in its model card, so a reviewer sees how the model was chosen.
"""

from __future__ import annotations

from typing import Any

from shipyard.automl.budget import Budget
from shipyard.automl.evaluate import Constraints, Dataset
from shipyard.automl.metrics import Metric
from shipyard.automl.trials import constraint_values

REPORT_FORMAT = "shipyard.automl/1"
#: Families stored in their library's own format, always sized exactly.
_NATIVE = ("lgbm", "xgboost")
#: Rows of the leaderboard kept in the report.
LEADERBOARD_ROWS = 10


def _space_text(dist: Any) -> str:
    """An Optuna distribution as a short text: ``float [0.005, 0.3] log``."""
    import optuna

    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return "one of " + ", ".join(str(c) for c in dist.choices)
    kind = "int" if isinstance(dist, optuna.distributions.IntDistribution) else "float"
    return f"{kind} [{dist.low:g}, {dist.high:g}]" + (" log" if dist.log else "")


def _row(trial: Any) -> dict[str, Any]:
    family = trial.params["estimator"]
    scores = trial.user_attrs.get("scores", [])
    figures = trial.user_attrs.get("figures", {})
    return {
        "trial": trial.number,
        "estimator": family,
        "cv_score": float(sum(scores) / len(scores)) if scores else trial.value,
        "cv_std": float(_std(scores)),
        "folds": len(scores),
        "fit_seconds": round(float(trial.user_attrs.get("fit_seconds", 0.0)), 3),
        "run_id": trial.user_attrs.get("run_id"),
        "params": {
            k.split(".", 1)[1]: v for k, v in trial.params.items() if k.startswith(family + ".")
        },
        **{k: round(v, 4) for k, v in figures.items()},
    }


def _std(values: list[float]) -> float:
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)


def search_report(
    study: Any,
    best: Any,
    data: Dataset,
    metric: Metric,
    limits: Constraints,
    figures: dict[str, float],
    budget: Budget,
    searched: float,
    refit: dict[str, Any],
    notes: list[str],
    about: dict[str, Any],
) -> dict[str, Any]:
    """The report of a finished search."""
    import optuna

    states = optuna.trial.TrialState
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != states.WAITING]
    complete = [
        t
        for t in trials
        if t.state == states.COMPLETE and all(v <= 0 for v in constraint_values(t))
    ]
    complete.sort(key=lambda t: t.value, reverse=metric.maximize)
    space: dict[str, dict[str, str]] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if name == "estimator":
                continue
            family, _, param = name.partition(".")
            space.setdefault(family, {})[param] = _space_text(dist)
    used = budget.elapsed()
    violations = limits.violations(figures)
    return {
        "format": REPORT_FORMAT,
        "task": data.task,
        "metric": metric.name,
        "direction": metric.direction,
        "rows": data.rows,
        "features": len(data.columns),
        "folds": len(data.folds),
        "classes": [str(c) for c in data.classes],
        "budget": {
            "seconds": budget.seconds,
            "used_seconds": round(used, 3),
            "search_seconds": round(searched, 3),
            "refit_seconds": round(refit["seconds"], 3),
            "overrun": round(max(used / budget.seconds - 1.0, 0.0), 4),
        },
        "trials": {
            "total": len(trials),
            "complete": sum(t.state == states.COMPLETE for t in trials),
            "pruned": sum(t.state == states.PRUNED for t in trials),
            "interrupted": sum(t.user_attrs.get("state") == "INTERRUPTED" for t in trials),
            "failed": sum(t.user_attrs.get("state") == "FAILED" for t in trials),
            "infeasible": sum(
                t.state == states.COMPLETE and any(v > 0 for v in constraint_values(t))
                for t in trials
            ),
        },
        "best": _row(best),
        "refit": refit,
        "candidate": {
            "predict_ms": round(figures["predict_ms"], 4),
            "model_mb": round(figures["model_mb"], 4),
            # scikit-learn models are sized exactly (skops, as stored) under a size limit,
            # else by their pickle: skops takes seconds on a large forest.
            "model_mb_measured_as": "stored"
            if limits.max_model_mb is not None or best.params["estimator"] in _NATIVE
            else "pickle estimate",
            "constraints": limits.to_dict(),
            "constraints_met": all(v <= 0 for v in violations.values()),
        },
        "leaderboard": [_row(t) for t in complete[:LEADERBOARD_ROWS]],
        "search_space": space,
        "skipped": notes,
        "study": about,
    }
