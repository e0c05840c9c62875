"""The estimator families a search draws from: their search spaces, starting points and
interruptible fits.

Each family knows how to suggest its hyperparameters to an Optuna trial (names prefixed
with the family, so one study holds a conditional space), the configurations to try first
(the library's defaults, then a few known to do well on tabular data, as FLAML and AutoGluon
start from a portfolio), and how to fit so that a budget can stop it: boosting stops
between rounds, forests and scikit-learn's histogram boosting between chunks of trees.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.automl.metrics import Metric, Task
from shipyard.core.errors import InvalidInputError
from shipyard.registry.models import estimator_families

Stop = Callable[[], bool]
Array = np.ndarray[Any, Any]

#: Rounds without improvement on the validation fold before boosting stops.
PATIENCE = 50
#: Trees added per chunk where a fit is interruptible only between chunks.
CHUNK = 10


@dataclass
class Fitted:
    """A fitted model, the rounds (or trees) it kept, and whether a stop cut it short."""

    model: Any
    rounds: int | None = None
    cut: bool = False
    # Scores per chunk where the family early-stops on its own (histogram boosting).
    best_score: float | None = None


@dataclass
class FitContext:
    """What every fit needs besides its data: the task, metric, classes, seed and threads."""

    task: Task
    metric: Metric
    n_classes: int
    seed: int
    n_jobs: int
    stop: Stop = field(default=lambda: False)
    # Share of positive rows, for XGBoost's class weight (negatives / positives).
    positive_ratio: float = 1.0
    # Positions of categorical columns (codes during the search, pandas categories at refit).
    categorical: tuple[int, ...] = ()


class Family:
    """One estimator family. Subclasses fill in the space and the fit."""

    name: str = ""
    tasks: tuple[Task, ...] = ("binary", "multiclass", "regression")
    #: The package that must import for the family to be searched, and its extra.
    needs: tuple[str, str] | None = None
    #: The flavour the registry stores it with.
    flavor: str = "sklearn"
    #: The module holding the family's estimators, and their classifier and regressor.
    module: str = "sklearn.ensemble"
    classes: tuple[str, str] = ("", "")

    def class_name(self, task: Task) -> str:
        """The estimator class for ``task``."""
        return self.classes[1] if task == "regression" else self.classes[0]

    def estimator_class(self, task: Task) -> Any:
        """The estimator class itself (its library imported now, not before)."""
        return getattr(importlib.import_module(self.module), self.class_name(task))

    def model_class(self, task: Task) -> str:
        """The class the registry will see (what an allowed-estimators rule judges)."""
        return f"{self.module}.{self.class_name(task)}"

    def final_estimator(self, task: Task) -> str | None:
        """The final step's class when the model is a scikit-learn pipeline."""
        return None

    def registry_families(self, task: Task) -> set[str]:
        """The names an allowed-estimators rule matches this family's models by."""
        conf = {"model_class": self.model_class(task)}
        final = self.final_estimator(task)
        if final:
            conf["final_estimator"] = final
        return estimator_families(self.flavor, conf)

    def available(self) -> bool:
        """Whether its library imports here."""
        if self.needs is None:
            return True
        try:
            __import__(self.needs[0])
        except ImportError:
            return False
        return True

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        """Draw this family's hyperparameters from the trial (unprefixed names)."""
        raise NotImplementedError

    def starts(self, ctx: FitContext) -> list[dict[str, Any]]:
        """Configurations to try before sampling: the defaults first."""
        raise NotImplementedError

    def fit(
        self,
        params: dict[str, Any],
        ctx: FitContext,
        X: Array,
        y: Array,
        valid: tuple[Array, Array],
    ) -> Fitted:
        """Fit on ``X, y``; early-stop on ``valid`` where the family can."""
        raise NotImplementedError

    def refit(
        self, params: dict[str, Any], ctx: FitContext, X: Any, y: Any, rounds: int | None
    ) -> Fitted:
        """Fit the final model on all the data with the rounds the folds chose."""
        raise NotImplementedError


def _boosting_space(trial: Any, p: str) -> dict[str, Any]:
    """What every boosting family searches: rounds (a cap; early stopping picks), step,
    row and column sampling, L1 and L2."""
    return {
        "n_estimators": trial.suggest_int(p + "n_estimators", 32, 4096, log=True),
        "learning_rate": trial.suggest_float(p + "learning_rate", 0.005, 0.3, log=True),
        "subsample": trial.suggest_float(p + "subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float(p + "colsample_bytree", 0.3, 1.0),
        "reg_alpha": trial.suggest_float(p + "reg_alpha", 1e-8, 10.0, log=True),
        "reg_lambda": trial.suggest_float(p + "reg_lambda", 1e-8, 10.0, log=True),
    }


def _weight_space(trial: Any, p: str, weighted: bool) -> dict[str, Any]:
    """Class weights, searched (rare classes: fraud at 1-2%) where the family takes them."""
    if not weighted:
        return {}
    return {"class_weight": trial.suggest_categorical(p + "class_weight", ["none", "balanced"])}


#: The untuned values of what every boosting family searches (rounds, sampling, L1).
_BOOSTING_DEFAULTS: dict[str, Any] = {
    "n_estimators": 100,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "reg_alpha": 1e-8,
}


def _boosting_args(params: dict[str, Any], ctx: FitContext, rounds: int) -> dict[str, Any]:
    """The estimator arguments every boosting family shares (scikit-learn API names)."""
    return {
        "n_estimators": rounds,
        "learning_rate": params["learning_rate"],
        "subsample": params["subsample"],
        "colsample_bytree": params["colsample_bytree"],
        "reg_alpha": params["reg_alpha"],
        "reg_lambda": params["reg_lambda"],
        "random_state": ctx.seed,
        "n_jobs": ctx.n_jobs,
    }


def _weight(params: dict[str, Any]) -> str | None:
    value = params.get("class_weight", "none")
    return None if value in (None, "none") else str(value)


def _objective_metric(ctx: FitContext, lib: str) -> str:
    """The library's own metric closest to the one searched (what early stopping watches)."""
    name = ctx.metric.name
    if ctx.task == "regression":
        return {"mae": "l1" if lib == "lgbm" else "mae"}.get(name, "rmse" if lib == "xgb" else "l2")
    if ctx.task == "binary":
        if name == "roc_auc":
            return "auc"
        if name == "pr_auc" or name.startswith("recall_at_precision"):
            return "average_precision" if lib == "lgbm" else "aucpr"
        return "binary_logloss" if lib == "lgbm" else "logloss"
    if name == "accuracy":
        return "multi_error" if lib == "lgbm" else "merror"
    return "multi_logloss" if lib == "lgbm" else "mlogloss"


class LightGBMFamily(Family):
    """LightGBM's gradient boosting (leaf-wise trees)."""

    name = "lgbm"
    needs = ("lightgbm", "automl")
    flavor = "lightgbm"
    module = "lightgbm"
    classes = ("LGBMClassifier", "LGBMRegressor")

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = f"{self.name}."
        return {
            **_boosting_space(trial, p),
            "num_leaves": trial.suggest_int(p + "num_leaves", 4, 256, log=True),
            "min_child_samples": trial.suggest_int(p + "min_child_samples", 2, 200, log=True),
            **_weight_space(trial, p, ctx.task != "regression"),
        }

    def starts(self, ctx: FitContext) -> list[dict[str, Any]]:
        weight = {} if ctx.task == "regression" else {"class_weight": "none"}
        default = {
            **_BOOSTING_DEFAULTS,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "reg_lambda": 1e-8,
            **weight,
        }
        slow = {
            **default,
            "n_estimators": 2000,
            "learning_rate": 0.03,
            "num_leaves": 15,
            "min_child_samples": 40,
            "subsample": 0.8,
            "colsample_bytree": 0.6,
            "reg_lambda": 1.0,
        }
        return [default, slow]

    def _estimator(self, params: dict[str, Any], ctx: FitContext, rounds: int) -> Any:
        extra: dict[str, Any] = (
            {} if ctx.task == "regression" else {"class_weight": _weight(params)}
        )
        return self.estimator_class(ctx.task)(
            **_boosting_args(params, ctx, rounds),
            num_leaves=params["num_leaves"],
            min_child_samples=params["min_child_samples"],
            subsample_freq=1 if params["subsample"] < 1.0 else 0,
            verbose=-1,
            **extra,
        )

    def _stopper(self, stop: Stop, graceful: bool, cut: list[bool]) -> Callable[[Any], None]:
        import lightgbm

        def callback(env: Any) -> None:
            if stop():
                cut.append(True)
                if not graceful:
                    from shipyard.automl.budget import TrialInterruptedError

                    raise TrialInterruptedError("the time budget ran out during this trial")
                raise lightgbm.callback.EarlyStopException(
                    env.iteration, env.evaluation_result_list or []
                )

        callback.order = 40  # type: ignore[attr-defined]
        return callback

    def fit(
        self,
        params: dict[str, Any],
        ctx: FitContext,
        X: Array,
        y: Array,
        valid: tuple[Array, Array],
    ) -> Fitted:
        import lightgbm

        model = self._estimator(params, ctx, params["n_estimators"])
        cut: list[bool] = []
        model.fit(
            X,
            y,
            eval_X=(valid[0],),
            eval_y=(valid[1],),
            eval_metric=_objective_metric(ctx, "lgbm"),
            categorical_feature=list(ctx.categorical) if ctx.categorical else "auto",
            callbacks=[
                lightgbm.early_stopping(PATIENCE, first_metric_only=True, verbose=False),
                self._stopper(ctx.stop, False, cut),
            ],
        )
        best = model.best_iteration_ or params["n_estimators"]
        return Fitted(model, int(best))

    def refit(
        self, params: dict[str, Any], ctx: FitContext, X: Any, y: Any, rounds: int | None
    ) -> Fitted:
        model = self._estimator(params, ctx, rounds or params["n_estimators"])
        cut: list[bool] = []
        model.fit(X, y, callbacks=[self._stopper(ctx.stop, True, cut)])
        return Fitted(model, model.booster_.current_iteration(), bool(cut))


class XGBoostFamily(Family):
    """XGBoost's gradient boosting (histogram, depth-wise trees)."""

    name = "xgboost"
    needs = ("xgboost", "automl")
    flavor = "xgboost"
    module = "xgboost"
    classes = ("XGBClassifier", "XGBRegressor")

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = f"{self.name}."
        return {
            **_boosting_space(trial, p),
            "max_depth": trial.suggest_int(p + "max_depth", 2, 10),
            "min_child_weight": trial.suggest_float(p + "min_child_weight", 0.01, 20.0, log=True),
            # XGBoost weighs classes by one ratio: binary only.
            **_weight_space(trial, p, ctx.task == "binary"),
        }

    def starts(self, ctx: FitContext) -> list[dict[str, Any]]:
        default: dict[str, Any] = {
            **_BOOSTING_DEFAULTS,
            "learning_rate": 0.3,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "reg_lambda": 1.0,
        }
        if ctx.task == "binary":
            default["class_weight"] = "none"
        return [default]

    def _estimator(self, params: dict[str, Any], ctx: FitContext, rounds: int, early: bool) -> Any:
        extra: dict[str, Any] = {}
        if _weight(params) == "balanced":
            extra["scale_pos_weight"] = ctx.positive_ratio
        if early:
            extra["early_stopping_rounds"] = PATIENCE
            extra["eval_metric"] = _objective_metric(ctx, "xgb")
        return self.estimator_class(ctx.task)(
            **_boosting_args(params, ctx, rounds),
            max_depth=params["max_depth"],
            min_child_weight=params["min_child_weight"],
            tree_method="hist",
            callbacks=[_xgb_stopper(ctx.stop)],
            **extra,
        )

    def fit(
        self,
        params: dict[str, Any],
        ctx: FitContext,
        X: Array,
        y: Array,
        valid: tuple[Array, Array],
    ) -> Fitted:
        model = self._estimator(params, ctx, params["n_estimators"], True)
        model.fit(X, y, eval_set=[valid], verbose=False)
        if ctx.stop():
            from shipyard.automl.budget import TrialInterruptedError

            raise TrialInterruptedError("the time budget ran out during this trial")
        best = getattr(model, "best_iteration", None)
        return Fitted(model, int(best) + 1 if best is not None else params["n_estimators"])

    def refit(
        self, params: dict[str, Any], ctx: FitContext, X: Any, y: Any, rounds: int | None
    ) -> Fitted:
        model = self._estimator(params, ctx, rounds or params["n_estimators"], False)
        model.fit(X, y, verbose=False)
        # The stopper is a training callback: the saved model must not carry it.
        model.set_params(callbacks=None)
        return Fitted(model, int(model.get_booster().num_boosted_rounds()), ctx.stop())


def _xgb_stopper(stop: Stop) -> Any:
    import xgboost

    class _Stop(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            return bool(stop())

    return _Stop()


class HistGradientBoostingFamily(Family):
    """scikit-learn's histogram gradient boosting."""

    name = "hist_gb"
    classes = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = f"{self.name}."
        params = {
            "max_iter": trial.suggest_int(p + "max_iter", 32, 2048, log=True),
            "learning_rate": trial.suggest_float(p + "learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int(p + "max_leaf_nodes", 4, 128, log=True),
            "min_samples_leaf": trial.suggest_int(p + "min_samples_leaf", 2, 200, log=True),
            "l2_regularization": trial.suggest_float(p + "l2_regularization", 1e-8, 10.0, log=True),
            "max_features": trial.suggest_float(p + "max_features", 0.3, 1.0),
        }
        # No class weights here: with sample weights scikit-learn 1.9 bins every fit by
        # weighted quantiles, 50x slower (1.6 s for 400 rows), and each chunk is a fit.
        return params

    def starts(self, ctx: FitContext) -> list[dict[str, Any]]:
        default: dict[str, Any] = {
            "max_iter": 100,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 1e-8,
            "max_features": 1.0,
        }
        return [default]

    def _estimator(self, params: dict[str, Any], ctx: FitContext, frame: bool = False) -> Any:
        extra: dict[str, Any] = {}
        if ctx.categorical:
            # Codes during the search; the refit sees the frame's category dtype.
            extra["categorical_features"] = "from_dtype" if frame else list(ctx.categorical)
        return self.estimator_class(ctx.task)(
            max_iter=CHUNK,
            learning_rate=params["learning_rate"],
            max_leaf_nodes=params["max_leaf_nodes"],
            min_samples_leaf=params["min_samples_leaf"],
            l2_regularization=params["l2_regularization"],
            max_features=params["max_features"],
            early_stopping=False,
            warm_start=True,
            random_state=ctx.seed,
            **extra,
        )

    def fit(
        self,
        params: dict[str, Any],
        ctx: FitContext,
        X: Array,
        y: Array,
        valid: tuple[Array, Array],
    ) -> Fitted:
        from shipyard.automl.evaluate import score_model

        model = self._estimator(params, ctx)
        best, best_at, total = ctx.metric.worst, 0, 0
        while total < params["max_iter"]:
            # Every chunk is a fit that bins the data again: chunks grow as the model does.
            total = min(total + max(CHUNK, min(total // 2, 5 * CHUNK)), params["max_iter"])
            model.set_params(max_iter=total)
            model.fit(X, y)
            if ctx.stop():
                from shipyard.automl.budget import TrialInterruptedError

                raise TrialInterruptedError("the time budget ran out during this trial")
            score = score_model(model, valid[0], valid[1], ctx.metric)
            if ctx.metric.better(score, best):
                best, best_at = score, total
            elif total - best_at >= PATIENCE:
                break
        return Fitted(model, best_at, best_score=best)

    def refit(
        self, params: dict[str, Any], ctx: FitContext, X: Any, y: Any, rounds: int | None
    ) -> Fitted:
        model = self._estimator(params, ctx, frame=True)
        target, total = rounds or params["max_iter"], 0
        while total < target and not (total and ctx.stop()):
            total = min(total + max(CHUNK, min(total // 2, 5 * CHUNK)), target)
            model.set_params(max_iter=total)
            model.fit(X, y)
        model.set_params(warm_start=False)
        return Fitted(model, total, total < target)


class RandomForestFamily(Family):
    """scikit-learn's random forest."""

    name = "random_forest"
    classes = ("RandomForestClassifier", "RandomForestRegressor")

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = f"{self.name}."
        params = {
            "n_estimators": trial.suggest_int(p + "n_estimators", 50, 500, log=True),
            "max_features": trial.suggest_float(p + "max_features", 0.05, 1.0, log=True),
            "min_samples_leaf": trial.suggest_int(p + "min_samples_leaf", 1, 64, log=True),
        }
        return {**params, **_weight_space(trial, p, ctx.task != "regression")}

    def starts(self, ctx: FitContext) -> list[dict[str, Any]]:
        default: dict[str, Any] = {
            "n_estimators": 100,
            "max_features": 1.0 if ctx.task == "regression" else 0.3,
            "min_samples_leaf": 1,
        }
        if ctx.task != "regression":
            default["class_weight"] = "none"
        return [default]

    def _grow(
        self, params: dict[str, Any], ctx: FitContext, X: Any, y: Any, graceful: bool
    ) -> Fitted:
        cls = self.estimator_class(ctx.task)
        extra: dict[str, Any] = {}
        if ctx.task != "regression" and _weight(params) == "balanced":
            # Weights from the whole target: a warm-started forest must not recompute them.
            from sklearn.utils.class_weight import compute_class_weight

            classes = np.unique(y)
            weights = compute_class_weight("balanced", classes=classes, y=np.asarray(y))
            extra["class_weight"] = dict(zip(classes.tolist(), weights.tolist(), strict=True))
        forest = cls(
            n_estimators=0,
            max_features=params["max_features"],
            min_samples_leaf=params["min_samples_leaf"],
            warm_start=True,
            n_jobs=ctx.n_jobs,
            random_state=ctx.seed,
            **extra,
        )
        model = _encoded(forest, ctx, one_hot=False)
        key = "model__n_estimators" if ctx.categorical else "n_estimators"
        total, target = 0, params["n_estimators"]
        while total < target:
            if total and ctx.stop():
                if not graceful:
                    from shipyard.automl.budget import TrialInterruptedError

                    raise TrialInterruptedError("the time budget ran out during this trial")
                break
            total = min(total + CHUNK, target)
            model.set_params(**{key: total})
            model.fit(X, y)
        forest.set_params(warm_start=False)
        return Fitted(model, total, total < target)

    def fit(
        self,
        params: dict[str, Any],
        ctx: FitContext,
        X: Array,
        y: Array,
        valid: tuple[Array, Array],
    ) -> Fitted:
        return self._grow(params, ctx, X, y, graceful=False)

    def refit(
        self, params: dict[str, Any], ctx: FitContext, X: Any, y: Any, rounds: int | None
    ) -> Fitted:
        return self._grow(params, ctx, X, y, graceful=True)


class ExtraTreesFamily(RandomForestFamily):
    """scikit-learn's extremely randomised trees (random cut points: smoother scores, often
    the best on small tables)."""

    name = "extra_trees"
    classes = ("ExtraTreesClassifier", "ExtraTreesRegressor")


class LinearFamily(Family):
    """Logistic regression (classification) or ridge (regression) on scaled features."""

    name = "logistic_regression"
    tasks: tuple[Task, ...] = ("binary", "multiclass")

    def model_class(self, task: Task) -> str:
        return "sklearn.pipeline.Pipeline"

    def final_estimator(self, task: Task) -> str | None:
        return "sklearn.linear_model._logistic.LogisticRegression"

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = f"{self.name}."
        return {
            "C": trial.suggest_float(p + "C", 1e-4, 100.0, log=True),
            **_weight_space(trial, p, True),
        }

    def starts(self, ctx: FitContext) -> list[dict[str, Any]]:
        return [{"C": 1.0, "class_weight": "none"}]

    def _pipeline(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=params["C"], class_weight=_weight(params), max_iter=2000)
        return _encoded(model, ctx, one_hot=True)

    def fit(
        self,
        params: dict[str, Any],
        ctx: FitContext,
        X: Array,
        y: Array,
        valid: tuple[Array, Array],
    ) -> Fitted:
        return Fitted(self._pipeline(params, ctx).fit(X, y))

    def refit(
        self, params: dict[str, Any], ctx: FitContext, X: Any, y: Any, rounds: int | None
    ) -> Fitted:
        return Fitted(self._pipeline(params, ctx).fit(X, y))


class RidgeFamily(LinearFamily):
    """Ridge regression on scaled features (the linear family of regression)."""

    name = "ridge"
    tasks: tuple[Task, ...] = ("regression",)

    def final_estimator(self, task: Task) -> str | None:
        return "sklearn.linear_model._ridge.Ridge"

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        return {"alpha": trial.suggest_float(f"{self.name}.alpha", 1e-4, 1000.0, log=True)}

    def starts(self, ctx: FitContext) -> list[dict[str, Any]]:
        return [{"alpha": 1.0}]

    def _pipeline(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.linear_model import Ridge

        return _encoded(Ridge(alpha=params["alpha"]), ctx, one_hot=True)


def _encoded(model: Any, ctx: FitContext, *, one_hot: bool) -> Any:
    """``model`` behind what it needs of the raw columns: linear models get imputed, scaled
    numbers and one-hot categories; a forest gets ordinal codes for categories (and takes
    numbers, missing values included, as they are)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    if not ctx.categorical:
        return Pipeline([("prep", numeric), ("model", model)]) if one_hot else model
    cats = list(ctx.categorical)
    encoder = (
        OneHotEncoder(handle_unknown="ignore")
        if one_hot
        else OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
    )
    prep = ColumnTransformer(
        [("categories", encoder, cats)],
        remainder=numeric if one_hot else "passthrough",
    )
    return Pipeline([("prep", prep), ("model", model)])


#: Every family, in the order their starting points are tried: LightGBM's defaults first
#: (the search never starts below them), then the cheaper fits, so that a short budget
#: still sees every family.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        LightGBMFamily(),
        XGBoostFamily(),
        LinearFamily(),
        RidgeFamily(),
        HistGradientBoostingFamily(),
        RandomForestFamily(),
        ExtraTreesFamily(),
    )
}


def choose_families(
    task: Task, names: list[str] | None, allowed: list[str] | None
) -> tuple[list[Family], list[str]]:
    """The families to search, and a note for each one left out (and why).

    ``names`` are what the caller asked for (all that fit the task when None); ``allowed``
    is the model's governance list (``shipyard.allowed_estimators``), matched the way the
    registry matches it at registration, so a search never produces a model that cannot be
    registered.

    Raises:
        InvalidInputError: a name is unknown, or nothing is left to search.
        PermissionDeniedError: every family asked for is outside the allowed list.
    """
    from shipyard.core.errors import PermissionDeniedError
    from shipyard.registry.models import allowed_estimator

    known = [n for n, f in FAMILIES.items() if task in f.tasks]
    asked = list(names) if names else known
    unknown = [n for n in asked if n not in FAMILIES]
    if unknown:
        raise InvalidInputError(
            f"estimators must be among {', '.join(known)} for a {task} task; got "
            f"{', '.join(unknown)}"
        )
    notes: list[str] = []
    chosen: list[Family] = []
    refused: list[str] = []
    for name in asked:
        family = FAMILIES[name]
        if task not in family.tasks:
            notes.append(f"{name}: not for a {task} task")
        elif allowed and not allowed_estimator(family.registry_families(task), allowed):
            refused.append(name)
            notes.append(f"{name}: not in the model's allowed estimators ({', '.join(allowed)})")
        elif not family.available():
            extra = family.needs[1] if family.needs else ""
            notes.append(f"{name}: its library is not installed (pip install 'shipyard[{extra}]')")
        else:
            chosen.append(family)
    if not chosen:
        if refused:
            raise PermissionDeniedError(
                f"the model allows only {', '.join(allowed or [])}; none of "
                f"{', '.join(asked)} is allowed"
            )
        raise InvalidInputError(f"no estimator family left to search: {'; '.join(notes)}")
    return chosen, notes
