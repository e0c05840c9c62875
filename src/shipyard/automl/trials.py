"""The trial loop every worker runs: ask the study, score, record a child run, tell.

The same loop runs in the search's own process and in each Ray worker, against one Optuna
study in a shared storage; which configuration comes next is the sampler's choice (seeded),
so one worker with a fixed seed makes the same trials wherever it runs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

from shipyard.automl.budget import Budget, StopAt, TrialInterruptedError
from shipyard.automl.evaluate import Constraints, Dataset, TrialScore, evaluate
from shipyard.automl.metrics import Metric
from shipyard.automl.space import FAMILIES, FitContext
from shipyard.tracking.models import Metric as Point
from shipyard.tracking.models import RunStatus
from shipyard.tracking.service import TrackingService

#: Tags on every trial's child run.
TRIAL_TAG = "shipyard.automl.trial"
STATE_TAG = "shipyard.automl.state"
STUDY_TAG = "shipyard.automl.study"
#: Below this many seconds left, a new trial is not started.
MIN_TRIAL_SECONDS = 0.3
#: What finishing takes besides the refit: the candidate's latency and size, the report.
FINISH_SECONDS = 0.4
#: The final refit's rounds: the folds' mean, scaled for the rows the folds held out.
REFIT_ROUNDS = 1.1


@dataclass
class LoopSpec:
    """Everything a worker needs to run trials (it travels to Ray workers whole)."""

    families: list[str]
    metric: Metric
    seed: int
    n_jobs: int
    constraints: Constraints
    budget: Budget
    max_trials: int | None
    experiment_id: str
    parent_run_id: str
    study_name: str
    # Several workers share the study: the sampler must not hand them all the same point.
    parallel: bool = False


def metric_key(metric: Metric) -> str:
    """The metric's name as a tracking key (``recall_at_precision:0.9`` has a colon)."""
    return metric.name.replace(":", "_at_")


def constraint_values(trial: Any) -> list[float]:
    """The violations a trial recorded with ``set_constraint`` (none: feasible)."""
    return list(trial.constraints.values())


def make_sampler(seed: int, parallel: bool) -> Any:
    """TPE over the conditional space (multivariate, grouped by family), aware of the
    constraints trials set (Optuna 5); with several workers it lies about running trials so
    they do not all pick the same point."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            group=True,
            constant_liar=parallel,
            n_startup_trials=8,
        )


@contextmanager
def study_storage(url: str | None) -> Iterator[Any]:
    """Optuna's storage for ``url`` (None: in memory), its connections closed after."""
    import optuna

    if url is None:
        yield optuna.storages.InMemoryStorage()
        return
    storage = optuna.storages.RDBStorage(url)
    try:
        yield storage
    finally:
        storage.remove_session()
        storage.engine.dispose()


def make_pruner() -> Any:
    """Successive halving over folds: a rung at 1 fold, the next at 3."""
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


def refit_reserve(study: Any, data: Dataset) -> float:
    """Seconds to keep for refitting the best trial on every row."""
    best = best_trial(study, partial=True)
    if best is None:
        return FINISH_SECONDS
    k = len(data.folds)
    per_fold = float(best.user_attrs.get("fit_seconds", 0.0)) / max(
        len(best.user_attrs.get("scores", [])), 1
    )
    # Measuring the candidate costs what measuring a fold's model did, for more rows.
    measuring = float(best.user_attrs.get("figures", {}).get("measure_seconds", 0.0))
    return (per_fold * REFIT_ROUNDS * 1.2 + measuring) * k / (k - 1) + FINISH_SECONDS


def started(study: Any) -> int:
    """Trials begun so far (the enqueued starting points not yet taken do not count)."""
    import optuna

    states = optuna.trial.TrialState
    begun = (states.RUNNING, states.COMPLETE, states.PRUNED, states.FAIL)
    return len(study.get_trials(deepcopy=False, states=begun))


def ranked_trials(study: Any, *, partial: bool = False) -> list[Any]:
    """Complete trials that met every constraint, best first.

    With ``partial``, when no trial completed, those pruned or cut by the budget after one
    fold or more, on the folds they reached: the budget's best so far, as FLAML returns it.
    """
    import optuna

    states = optuna.trial.TrialState
    feasible = [
        t
        for t in study.get_trials(deepcopy=False)
        if all(v <= 0 for v in constraint_values(t)) and t.user_attrs.get("scores")
    ]
    trials = [t for t in feasible if t.state == states.COMPLETE]
    if not trials and partial:
        trials = [
            t
            for t in feasible
            if t.state == states.PRUNED or t.user_attrs.get("state") == "INTERRUPTED"
        ]
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(trials, key=lambda t: (sign * mean_score(t), t.number))


def mean_score(trial: Any) -> float:
    """A trial's mean over the folds it reached."""
    scores = trial.user_attrs["scores"]
    return float(sum(scores) / len(scores))


def best_trial(study: Any, *, partial: bool = False) -> Any:
    """The best trial of :func:`ranked_trials`, or None."""
    ranked = ranked_trials(study, partial=partial)
    return ranked[0] if ranked else None


def _fit_errors() -> tuple[type[BaseException], ...]:
    """What a library raises for a configuration it cannot fit (the trial fails, the
    search goes on)."""
    import numpy as np

    errors: list[type[BaseException]] = [ValueError, ArithmeticError, np.linalg.LinAlgError]
    try:
        import lightgbm

        errors.append(lightgbm.basic.LightGBMError)
    except ImportError:
        pass
    return tuple(errors)


def run_trials(
    study: Any,
    data: Dataset,
    spec: LoopSpec,
    tracking: TrackingService,
    on_trial: Callable[[Any], None] | None = None,
) -> int:
    """Run trials until the budget (less the refit's reserve) or the trial cap is reached;
    return how many this worker ran."""
    import optuna

    errors = _fit_errors()
    families = [FAMILIES[n] for n in spec.families]
    names = [f.name for f in families]
    ran = 0
    while True:
        if spec.max_trials is not None and started(study) >= spec.max_trials:
            break
        reserve = refit_reserve(study, data)
        if spec.budget.left(reserve) < MIN_TRIAL_SECONDS:
            break
        trial = study.ask()
        name = trial.suggest_categorical("estimator", names)
        family = FAMILIES[name]
        ctx = FitContext(
            task=data.task,
            metric=spec.metric,
            n_classes=len(data.classes),
            seed=spec.seed,
            n_jobs=spec.n_jobs,
            stop=StopAt(spec.budget.deadline - reserve),
            positive_ratio=data.positive_ratio,
            categorical=data.categorical,
        )
        params = family.suggest(trial, ctx)
        run = tracking.create_run(
            spec.experiment_id,
            name=f"trial-{trial.number}-{name}",
            parent_id=spec.parent_run_id,
            tags={TRIAL_TAG: trial.number, STUDY_TAG: spec.study_name},
        )
        began = time.perf_counter()
        out = TrialScore()
        state, error = "COMPLETE", None
        try:
            # scikit-learn's histogram boosting takes its threads from OpenMP, not n_jobs.
            with threadpool_limits(limits=spec.n_jobs, user_api="openmp"):
                evaluate(trial, family, params, data, ctx, spec.constraints, out)
        except optuna.TrialPruned:
            state = "PRUNED"
        except TrialInterruptedError:
            state = "INTERRUPTED"
        except errors as exc:
            state, error = "FAILED", f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - began
        trial.set_user_attr("run_id", run.id)
        trial.set_user_attr("scores", out.scores)
        trial.set_user_attr("fit_seconds", sum(out.fit_seconds))
        trial.set_user_attr("seconds", seconds)
        if out.rounds:
            trial.set_user_attr("rounds", int(sum(out.rounds) / len(out.rounds)))
        if out.figures:
            trial.set_user_attr("figures", out.figures)
        for key, excess in out.violations.items():
            trial.set_constraint(key, excess)
        if error:
            trial.set_user_attr("error", error[:500])
        _record(tracking, run.id, spec, name, params, out, state, seconds, error)
        if state == "COMPLETE":
            study.tell(trial, out.mean)
        elif state == "PRUNED":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            trial.set_user_attr("state", state)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        ran += 1
        if on_trial is not None:
            on_trial(study)
    return ran


def _record(
    tracking: TrackingService,
    run_id: str,
    spec: LoopSpec,
    family: str,
    params: dict[str, Any],
    out: TrialScore,
    state: str,
    seconds: float,
    error: str | None,
) -> None:
    """The trial's child run: its params, a point per fold, the mean, time and state."""
    key = metric_key(spec.metric)
    now = int(time.time() * 1000)
    points = [Point(key, s, i, now) for i, s in enumerate(out.scores)]
    if out.scores:
        points += [Point(f"cv_{key}", out.mean, 0, now), Point(f"cv_{key}_std", out.std, 0, now)]
    points += [
        Point("duration_seconds", seconds, 0, now),
        Point("fit_seconds", sum(out.fit_seconds), 0, now),
        Point("folds", float(len(out.scores)), 0, now),
    ]
    points += [Point(k, v, 0, now) for k, v in out.figures.items()]
    if out.rounds:
        points.append(Point("rounds", sum(out.rounds) / len(out.rounds), 0, now))
    tags: dict[str, object] = {STATE_TAG: state, "shipyard.automl.pruned": state == "PRUNED"}
    if out.violations:
        tags["shipyard.automl.feasible"] = out.feasible
    if error:
        tags["shipyard.automl.error"] = error[:1000]
    tracking.log_batch(run_id, points, params={"estimator": family, **params}, tags=tags)
    tracking.end_run(run_id, RunStatus.FAILED if state == "FAILED" else RunStatus.FINISHED)
