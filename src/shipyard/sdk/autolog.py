"""``shipyard.autolog()``: record params, training metrics and the model of sklearn fits.

Every estimator's ``fit`` (resolved through its MRO) is wrapped once. Only the outermost
fit logs: a Pipeline or a search that fits inner estimators records one run, not dozens.
Metric names match MLflow's autolog (``training_accuracy_score``, ``training_roc_auc``, ...).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

from shipyard.core.errors import InvalidInputError, ShipyardError
from shipyard.sdk import runs

logger = logging.getLogger(__name__)

_PATCHED = "_shipyard_autolog"
# What skops raises on objects it cannot persist (e.g. a fitted scorer recurses forever).
_UNSERIALISABLE = (RecursionError, TypeError, ValueError, AttributeError, NotImplementedError)
# True while an outer fit is being recorded, so nested fits stay silent.
_inside_fit: contextvars.ContextVar[bool] = contextvars.ContextVar("shipyard_in_fit", default=False)


def autolog(*, log_models: bool = True, disable: bool = False) -> None:
    """Turn scikit-learn autologging on (or off with ``disable=True``)."""
    from sklearn.utils import all_estimators

    owners: set[type] = set()
    for _, cls in all_estimators():
        for klass in cls.__mro__:
            if "fit" in klass.__dict__:
                owners.add(klass)
                break
    for owner in owners:
        fit = owner.__dict__["fit"]
        patched = getattr(fit, _PATCHED, None)
        if disable:
            if patched is not None:
                owner.fit = fit.__wrapped__  # type: ignore[attr-defined]
        elif patched is None:
            owner.fit = _wrap(fit)  # type: ignore[attr-defined]
        elif patched != log_models:
            owner.fit = _wrap(fit.__wrapped__, log_models)  # type: ignore[attr-defined]


def _wrap(fit: Callable[..., Any], log_models: bool = True) -> Callable[..., Any]:
    @functools.wraps(fit)
    def fit_and_log(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside_fit.get():
            return fit(self, *args, **kwargs)
        token = _inside_fit.set(True)
        started = runs.active_run() is None
        run = runs.start_run(run_name=type(self).__name__) if started else runs.active_run()
        if run is None:
            raise InvalidInputError("autolog found no active run")
        try:
            result = fit(self, *args, **kwargs)
            _record(self, args, kwargs, log_models)
        except BaseException:
            if started:
                run.end("FAILED")
            raise
        finally:
            _inside_fit.reset(token)
        if started:
            run.end("FINISHED")
        return result

    setattr(fit_and_log, _PATCHED, log_models)
    return fit_and_log


def _record(
    estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any], log_models: bool
) -> None:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    cls = type(estimator)
    runs.set_tags(
        {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"}
    )
    params = {k: _param_text(v) for k, v in estimator.get_params(deep=True).items()}
    try:
        runs.log_params(params)
    except ShipyardError as exc:  # e.g. a second fit in one run with other params
        logger.warning("autolog: params not logged: %s", exc)
    if X is not None and y is not None:
        runs.log_metrics(_training_metrics(estimator, X, y))
    if log_models and X is not None:
        try:
            _log_model(estimator, X)
        except (*_UNSERIALISABLE, ShipyardError) as exc:
            # Autologging must never break the user's fit; say why the model is missing.
            logger.warning("autolog: %s not stored with skops: %r", cls.__name__, exc)
            runs.set_tag("shipyard.autolog.model_error", f"{type(exc).__name__}: {exc}"[:500])


def _param_text(value: Any) -> str:
    text = (
        repr(value)
        if not isinstance(value, str | int | float | bool) and value is not None
        else str(value)
    )
    return text[:6000]


def _training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if is_classifier(estimator):
                pred = estimator.predict(X)
                binary = len(getattr(estimator, "classes_", [])) == 2
                avg = "binary" if binary else "weighted"
                out["training_accuracy_score"] = m.accuracy_score(y, pred)
                out["training_precision_score"] = m.precision_score(
                    y, pred, average=avg, zero_division=0
                )
                out["training_recall_score"] = m.recall_score(y, pred, average=avg, zero_division=0)
                out["training_f1_score"] = m.f1_score(y, pred, average=avg, zero_division=0)
                if hasattr(estimator, "predict_proba"):
                    proba = estimator.predict_proba(X)
                    out["training_log_loss"] = m.log_loss(y, proba, labels=estimator.classes_)
                    if binary:
                        out["training_roc_auc"] = m.roc_auc_score(y, proba[:, 1])
                    else:
                        out["training_roc_auc"] = m.roc_auc_score(
                            y, proba, multi_class="ovr", labels=estimator.classes_
                        )
            elif is_regressor(estimator):
                pred = estimator.predict(X)
                mse = m.mean_squared_error(y, pred)
                out["training_mean_squared_error"] = mse
                out["training_root_mean_squared_error"] = mse**0.5
                out["training_mean_absolute_error"] = m.mean_absolute_error(y, pred)
                out["training_r2_score"] = m.r2_score(y, pred)
            if hasattr(estimator, "score"):
                out["training_score"] = float(estimator.score(X, y))
        except (ValueError, TypeError, AttributeError) as exc:
            logger.warning(
                "autolog: training metrics skipped for %s: %s", type(estimator).__name__, exc
            )
    return {k: float(v) for k, v in out.items()}


def _log_model(estimator: Any, X: Any) -> None:
    """Store the fitted estimator as a model package (skops + ONNX where it converts).

    The first rows of the training data are the input example, so the package carries a
    signature and can be registered with ``register_model(name, "runs:/RUN/model")``.
    """
    from shipyard.sdk.registry import model_registry

    run = runs.active_run()
    if run is None:
        raise InvalidInputError("autolog found no active run")
    example = X.iloc[:5] if hasattr(X, "iloc") else X[:5]
    model_registry().log_model(run.id, estimator, artifact_path="model", input_example=example)
