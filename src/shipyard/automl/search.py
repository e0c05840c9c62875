"""``shipyard.automl.search``: a time-budgeted model search inside the governed lifecycle.

The search is an Optuna study (TPE over a conditional space of estimator families, with
successive halving over folds) kept in Shipyard's database, so ``optuna.load_study`` opens
it. It starts from each family's defaults, so it never scores below them on its own folds.
Every trial is a child run of the search's run; the budget is wall clock with FLAML's
semantics (stop when it ends, keep the best so far), enforced inside trials, and the time
to refit the winner on every row is kept back from the search.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from shipyard.automl.budget import Budget, StopAt
from shipyard.automl.evaluate import Constraints, Dataset, categories_of, prepare
from shipyard.automl.metrics import Metric, Task, get_metric
from shipyard.automl.progress import SearchProgress
from shipyard.automl.report import search_report
from shipyard.automl.space import FAMILIES, FitContext, choose_families
from shipyard.automl.trials import (
    FINISH_SECONDS,
    REFIT_ROUNDS,
    STUDY_TAG,
    LoopSpec,
    make_pruner,
    make_sampler,
    metric_key,
    ranked_trials,
    run_trials,
    started,
    study_storage,
)
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.registry.card import DATA_SOURCE_TAG, SEARCH_REPORT
from shipyard.registry.models import ALLOWED_ESTIMATORS_TAG, ModelVersion
from shipyard.tracking.models import Metric as Point
from shipyard.tracking.models import RunStatus

#: Where the search report is kept in the search's run (the registry puts it in the card).
REPORT_ARTIFACT = SEARCH_REPORT
#: The storage of a study kept in this process only (a search through a server).
MEMORY = "memory"
#: scikit-learn's histogram boosting takes at most this many categories per column.
HIST_GB_MAX_CATEGORIES = 250
#: A search's refit may run into what was kept for finishing by this share of the budget.
REFIT_GRACE = 0.02


@dataclass
class SearchResult:
    """The winner of a search, refitted on every row, with the search's report.

    ``model`` is the fitted estimator as its library gives it; it takes categorical columns
    as pandas categories, as it was fitted. ``predict``/``predict_proba`` take rows as
    ``search`` did (text columns included) and answer as the registered version does.
    """

    model: Any
    estimator: str
    config: dict[str, Any]
    score: float
    metric: str
    task: Task
    report: dict[str, Any]
    run_id: str
    study_name: str
    storage: str
    training_data: Any = field(repr=False, default=None)
    model_version: ModelVersion | None = None

    @property
    def leaderboard(self) -> list[dict[str, Any]]:
        """The best complete trials, best first."""
        return list(self.report["leaderboard"])

    @property
    def budget_used(self) -> float:
        """Wall-clock seconds the search took (refit included)."""
        return float(self.report["budget"]["used_seconds"])

    def prepare(self, X: Any) -> Any:
        """Rows shaped as ``search`` took them, as the model was fitted on them: a frame's
        columns by name (an array's by position), numbers as the training dtypes and text
        columns as the training categories (LightGBM refuses object columns where it was
        trained on categories; unseen values become missing)."""
        import pandas as pd

        frame = self.training_data
        wanted = list(frame.columns)
        named = isinstance(X, pd.DataFrame) and not isinstance(X.columns, pd.RangeIndex)
        if named:  # by name, in training order (extra columns are left out)
            rows = X.copy()
            rows.columns = [str(c) for c in rows.columns]
            missing = [c for c in wanted if c not in rows.columns]
            if missing:
                raise InvalidInputError(
                    f"the rows lack the model's column(s) {', '.join(missing[:10])}; it takes "
                    f"{', '.join(wanted)}"
                )
            rows = rows[wanted]
        else:  # an array, or a frame without names: by position
            rows = pd.DataFrame(np.asarray(X))
            if rows.ndim != 2 or rows.shape[1] != len(wanted):
                raise InvalidInputError(
                    f"the model takes {len(wanted)} columns ({', '.join(wanted)}); "
                    f"got {rows.shape[1] if rows.ndim == 2 else rows.ndim}"
                )
            rows.columns = wanted
        for column, kind in frame.dtypes.items():
            values = rows[column]
            if isinstance(kind, pd.CategoricalDtype):
                known = values.isin(kind.categories) | values.isna()
                rows[column] = values.where(known).astype(kind)
            elif values.dtype != kind:  # an array of mixed columns arrives as objects
                try:
                    rows[column] = values.astype(kind)
                except (TypeError, ValueError) as exc:
                    raise InvalidInputError(f"column {column!r} is not {kind}: {exc}") from None
        return rows

    def predict(self, X: Any) -> Any:
        """The winner's predictions for rows shaped as ``search`` took them."""
        return self.model.predict(self.prepare(X))

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (classification) for rows shaped as ``search`` took them."""
        if not hasattr(self.model, "predict_proba"):
            raise InvalidInputError(f"a {self.task} model has no predict_proba")
        return self.model.predict_proba(self.prepare(X))

    def register(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """Register the winner as a candidate version of ``name``, with the search report in
        its model card and its training data kept for gates and lineage."""
        from shipyard.sdk.registry import register_model

        frame = self.training_data
        mv = register_model(
            name,
            self.model,
            frame.head(5),
            run_id=self.run_id,
            description=description
            or f"AutoML winner: {self.estimator}, {self.metric} {self.score:.4f} (CV)",
            tags={
                "shipyard.automl.study": self.study_name,
                "shipyard.automl.trial": self.report["best"]["trial"],
                **(tags or {}),
            },
            training_data=frame,
        )
        self.model_version = mv
        return mv

    def to_dict(self) -> dict[str, Any]:
        """A summary for scripts (``shipyard automl run --json``)."""
        out = {
            "run_id": self.run_id,
            "estimator": self.estimator,
            "metric": self.metric,
            "score": self.score,
            "config": self.config,
            "budget": self.report["budget"],
            "trials": self.report["trials"],
            "candidate": self.report["candidate"],
            "leaderboard": self.leaderboard,
            "study": self.report["study"],
        }
        if self.model_version is not None:
            out["model_version"] = {
                "name": self.model_version.name,
                "version": self.model_version.version,
                "state": self.model_version.state.value,
            }
        return out


def search(
    X: Any,
    y: Any,
    *,
    task: Task = "binary",
    metric: str | None = None,
    time_budget: float = 60,
    estimators: list[str] | None = None,
    constraints: Mapping[str, float] | None = None,
    seed: int = 0,
    max_trials: int | None = None,
    folds: int | None = None,
    experiment: str = "automl",
    run_name: str | None = None,
    register: str | None = None,
    executor: Literal["local", "ray"] = "local",
    n_workers: int = 1,
    n_jobs: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool = False,
    data_source: str | None = None,
) -> SearchResult:
    """Search for the best model of ``y`` given ``X`` within ``time_budget`` seconds.

    Args:
        X: features (a DataFrame, or an array; numeric or boolean columns).
        y: the target.
        task: ``binary``, ``multiclass`` or ``regression``.
        metric: what to optimise (``roc_auc``, ``pr_auc``, ``log_loss``,
            ``recall_at_precision:0.9``, ``accuracy``, ``f1``, ``rmse``, ``mae``, ``r2``).
        time_budget: wall-clock seconds for the whole search, refit included.
        estimators: families to search (``lgbm``, ``xgboost``, ``hist_gb``,
            ``logistic_regression``, ``random_forest``, ``extra_trees``; ``ridge`` for
            regression).
        constraints: ``max_predict_ms`` (median one-row prediction) and ``max_model_mb``.
        seed: seeds the folds, the sampler and every estimator.
        max_trials: stop after this many trials (with a fixed seed, a reproducible search).
        register: register the winner as a candidate of this model; its allowed
            estimator families restrict the search.
        executor: ``local`` (this process) or ``ray`` (``n_workers`` Ray tasks sharing the
            study; ``RAY_ADDRESS`` picks a cluster).
        n_jobs: threads per fit (default: one below 200,000 cells, else every core).
        storage: an Optuna storage URL for the study (default: the store's database).
        progress: show a live view of trials, the best score and the budget left.
        data_source: where the data came from (``prun_…:step``, a file), for lineage.

    Raises:
        InvalidInputError: bad arguments or data, or a budget too small for one trial.
        PermissionDeniedError: the model's allowed estimators exclude every family asked for.
    """
    import optuna

    from shipyard.sdk import context

    budget = Budget.start(_positive(time_budget, "time_budget"))
    if max_trials is not None and max_trials < 1:
        raise InvalidInputError(f"max_trials must be 1 or more; got {max_trials}")
    if n_workers < 1:
        raise InvalidInputError(f"n_workers must be 1 or more; got {n_workers}")
    if executor not in ("local", "ray"):
        raise InvalidInputError(f"executor must be local or ray; got {executor!r}")
    if executor == "local" and n_workers != 1:
        raise InvalidInputError("n_workers > 1 needs executor='ray'")
    chosen_metric = get_metric(metric, task)
    limits = Constraints.parse(dict(constraints or {}))
    ctx = context.current()
    backend = ctx.get_backend()
    allowed = _allowed(backend, register)
    families, notes = choose_families(task, estimators, allowed)
    data = prepare(X, y, task, seed, folds)
    families = _fit_data(families, data, notes)
    if not families:
        raise InvalidInputError(f"no estimator family left to search: {'; '.join(notes)}")
    frame = _frame(X, data)
    fingerprint = _fingerprint(data)
    url = storage or ctx.settings.automl_storage or _default_storage(backend)
    name = study_name or f"automl-{fingerprint[:8]}-{int(budget.started * 1000):x}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = n_jobs or _threads(data)
    tracking = backend.tracking
    parent = tracking.create_run(
        experiment,
        name=run_name or f"automl-{task}-{metric_key(chosen_metric)}",
        tags={
            STUDY_TAG: name,
            "shipyard.automl.storage": _redact(url),
            "shipyard.automl.data_sha256": fingerprint,
            **({DATA_SOURCE_TAG: data_source} if data_source else {}),
        },
    )
    stack = ExitStack()
    try:
        tracking.log_batch(
            parent.id,
            params={
                "task": task,
                "metric": chosen_metric.name,
                "time_budget": time_budget,
                "estimators": ",".join(f.name for f in families),
                "seed": seed,
                "folds": len(data.folds),
                "max_trials": max_trials if max_trials is not None else "none",
                "executor": executor,
                "workers": n_workers,
                "constraints": ",".join(f"{k}={v:g}" for k, v in limits.to_dict().items())
                or "none",
            },
        )
        opened = stack.enter_context(study_storage(None if url == MEMORY else url))
        study = optuna.create_study(
            study_name=name,
            storage=opened,
            direction=chosen_metric.direction,
            sampler=make_sampler(seed, n_workers > 1),
            pruner=make_pruner(),
            load_if_exists=True,
        )
        study.set_user_attr("shipyard_run_id", parent.id)
        if not study.get_trials(deepcopy=False):
            _enqueue_starts(study, families, data, chosen_metric, seed)
        spec = LoopSpec(
            families=[f.name for f in families],
            metric=chosen_metric,
            seed=seed,
            n_jobs=threads,
            constraints=limits,
            budget=budget,
            max_trials=max_trials,
            experiment_id=parent.experiment_id,
            parent_run_id=parent.id,
            study_name=name,
            parallel=n_workers > 1,
        )
        with SearchProgress(budget, chosen_metric, enabled=progress) as view:
            if executor == "ray":
                from shipyard.automl.distributed import run_on_ray

                run_on_ray(study, url, data, spec, ctx.settings, n_workers, view.update)
            else:
                run_trials(study, data, spec, tracking, view.update)
            view.update(study, note="refitting the best on every row")
            ranked = ranked_trials(study, partial=True)
            if not ranked:
                raise InvalidInputError(
                    f"no configuration finished within time_budget={time_budget:g} s "
                    f"({started(study)} begun); give the search more time"
                )
            searched = budget.elapsed()
            refitter = _Refit(data, frame, y, chosen_metric, seed, threads, budget)
            best, model, refit, figures = refitter.candidate(ranked, limits)
        report = search_report(
            study,
            best,
            data,
            chosen_metric,
            limits,
            figures,
            budget,
            searched,
            refit,
            notes,
            {
                "name": name,
                "storage": _redact(url),
                "executor": executor,
                "workers": n_workers,
                "seed": seed,
                "data_sha256": fingerprint,
                "data_source": data_source,
            },
        )
        _finish(tracking, parent.id, report, chosen_metric)
    except BaseException:
        tracking.end_run(parent.id, RunStatus.FAILED)
        raise
    finally:
        stack.close()
    family = best.params["estimator"]
    config = {k.split(".", 1)[1]: v for k, v in best.params.items() if k.startswith(family + ".")}
    result = SearchResult(
        model=model,
        estimator=family,
        config=config,
        score=report["best"]["cv_score"],
        metric=chosen_metric.name,
        task=task,
        report=report,
        run_id=parent.id,
        study_name=name,
        storage=url,
        training_data=frame,
    )
    if register:
        result.register(register)
    return result


#: Below this many cells a fit runs on one thread: OpenMP's start-up and, when another
#: process shares the cores, its spinning threads cost more than they save (a LightGBM
#: fit of 455 rows took 5 s instead of 0.05 s beside a second search).
ONE_THREAD_CELLS = 200_000


def _threads(data: Dataset) -> int:
    """Threads per fit: one for small tables, every core for large ones."""
    return 1 if data.X.size < ONE_THREAD_CELLS else (os.cpu_count() or 1)


def _fit_data(families: list[Any], data: Dataset, notes: list[str]) -> list[Any]:
    """Leave out the families that cannot take this data, saying why."""
    kept = []
    for family in families:
        why = None
        if family.name == "xgboost" and data.categorical:
            why = "xgboost: categorical columns are searched with the other families"
        elif (
            family.name == "xgboost"
            and data.task != "regression"
            and data.classes != list(range(len(data.classes)))
        ):
            why = "xgboost: its models predict 0..K-1, and these labels are not"
        elif family.name == "hist_gb" and data.max_categories > HIST_GB_MAX_CATEGORIES:
            why = (
                f"hist_gb: a categorical column has {data.max_categories} categories "
                f"(at most {HIST_GB_MAX_CATEGORIES})"
            )
        if why:
            notes.append(why)
        else:
            kept.append(family)
    return kept


def _positive(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise InvalidInputError(f"{what} must be a positive number of seconds; got {value!r}")
    return number


def _allowed(backend: Any, model: str | None) -> list[str] | None:
    """The estimator families the model's governance allows (None: no rule)."""
    if not model:
        return None
    try:
        listed = backend.registry.get_model(model).tags.get(ALLOWED_ESTIMATORS_TAG, "")
    except NotFoundError:
        return None
    return [a for a in str(listed).split(",") if a] or None


def _default_storage(backend: Any) -> str:
    from shipyard.store.studies import optuna_storage_url

    if backend.kind == "rest":
        # The server's database is not this client's to open: the study stays in memory
        # here, and every trial is still a child run on the server.
        return MEMORY
    return optuna_storage_url(backend.uri)


def _redact(url: str) -> str:
    from shipyard.store.studies import redact

    return redact(url)


def _frame(X: Any, data: Dataset) -> Any:
    import pandas as pd

    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    frame.columns = data.columns
    for i in data.categorical:
        frame[data.columns[i]] = categories_of(frame.iloc[:, i])
    return frame.reset_index(drop=True)


def _fingerprint(data: Dataset) -> str:
    """The training data's sha256 (columns, values and target): what lineage names."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(data.columns).encode())
    digest.update(np.ascontiguousarray(data.X).tobytes())
    digest.update(np.ascontiguousarray(data.y).tobytes())
    return digest.hexdigest()


def _enqueue_starts(
    study: Any, families: list[Any], data: Dataset, metric: Metric, seed: int
) -> None:
    """Each family's defaults first, then the other known-good starting points."""
    ctx = FitContext(data.task, metric, len(data.classes), seed, 1, categorical=data.categorical)
    rounds = [f.starts(ctx) for f in families]
    for depth in range(max(len(r) for r in rounds)):
        for family, starts in zip(families, rounds, strict=True):
            if depth < len(starts):
                params = {f"{family.name}.{k}": v for k, v in starts[depth].items()}
                study.enqueue_trial({"estimator": family.name, **params})


#: Candidates refitted at most when the first breaks a constraint on every row.
MAX_CANDIDATES = 3


@dataclass(frozen=True)
class _Refit:
    """What refitting a trial on every row needs: the data both ways, the metric, the seed,
    threads and the budget."""

    data: Dataset
    frame: Any
    y: Any
    metric: Metric
    seed: int
    threads: int
    budget: Budget

    def candidate(
        self, ranked: list[Any], limits: Constraints
    ) -> tuple[Any, Any, dict[str, Any], dict[str, float]]:
        """Refit the best trial and measure it; if the refitted model breaks a constraint
        (fitted on more rows, a model grows), try the next while time is left."""
        refused: list[int] = []
        for trial in ranked[:MAX_CANDIDATES]:
            model, refit = self.fit(trial)
            flavor = FAMILIES[trial.params["estimator"]].flavor
            figures = limits.measure(model, flavor, self.frame.iloc[:1])
            refit["refused_after_refit"] = list(refused)
            met = all(v <= 0 for v in limits.violations(figures).values())
            if met or self.budget.left(FINISH_SECONDS) <= 0:
                break
            refused.append(trial.number)
        return trial, model, refit, figures

    def fit(self, trial: Any) -> tuple[Any, dict[str, Any]]:
        """Fit a trial's configuration on every row, with the rounds its folds kept (scaled
        for the rows they held out), interruptible where finishing begins."""
        family = FAMILIES[trial.params["estimator"]]
        params = {
            k.split(".", 1)[1]: v
            for k, v in trial.params.items()
            if k.startswith(family.name + ".")
        }
        rounds = trial.user_attrs.get("rounds")
        target = round(rounds * REFIT_ROUNDS) if rounds else None
        data, budget = self.data, self.budget
        ctx = FitContext(
            data.task,
            self.metric,
            len(data.classes),
            self.seed,
            self.threads,
            StopAt(budget.deadline - FINISH_SECONDS + budget.seconds * REFIT_GRACE),
            data.positive_ratio,
            data.categorical,
        )
        as_codes = family.name == "xgboost" or data.task == "regression"
        labels = data.y if as_codes else _labels(self.y)
        began = time.perf_counter()
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            fitted = family.refit(params, ctx, self.frame, labels, target)
        return fitted.model, {
            "seconds": time.perf_counter() - began,
            "rounds": fitted.rounds,
            "planned_rounds": target,
            "cut_by_budget": fitted.cut,
        }


def _labels(y: Any) -> Any:
    import pandas as pd

    values = y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else np.asarray(y)
    values = values.ravel()
    return values.astype(int) if values.dtype == bool else values


def _finish(tracking: Any, run_id: str, report: dict[str, Any], metric: Metric) -> None:
    """The search's run: the best score, the budget, trial counts and the report."""
    import json

    key = metric_key(metric)
    now = int(time.time() * 1000)
    best = report["best"]
    candidate = report["candidate"]
    points = [
        Point(f"cv_{key}", best["cv_score"], 0, now),
        Point(f"cv_{key}_std", best["cv_std"], 0, now),
        Point("budget_used_seconds", report["budget"]["used_seconds"], 0, now),
        Point("trials", float(report["trials"]["total"]), 0, now),
        Point("trials_pruned", float(report["trials"]["pruned"]), 0, now),
        Point("predict_ms", candidate["predict_ms"], 0, now),
        Point("model_mb", candidate["model_mb"], 0, now),
    ]
    tracking.log_batch(
        run_id,
        points,
        params={f"best.{k}": v for k, v in best["params"].items()},
        tags={
            "shipyard.automl.best_trial": best["trial"],
            "shipyard.automl.best_estimator": best["estimator"],
        },
    )
    tracking.log_bytes(run_id, json.dumps(report, indent=2, default=str).encode(), REPORT_ARTIFACT)
    tracking.end_run(run_id, RunStatus.FINISHED)
