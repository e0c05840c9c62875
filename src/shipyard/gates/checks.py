"""The checks a gate policy can name, each turning evaluation data into a CheckResult."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInputError
from shipyard.drift.engine import PSI_BANDS, drift_report
from shipyard.gates.metrics import metric_value, paired_bootstrap
from shipyard.gates.policy import (
    ChampionChallengerCheck,
    CustomCheck,
    DataValidationCheck,
    DriftCheck,
    FairnessCheck,
    GatePolicy,
    MetricCheck,
    PrivacyCheck,
    SilosCheck,
)
from shipyard.gates.report import CheckResult

Array = np.ndarray[Any, Any]
#: The favourable outcome by use case when a fairness check does not say: a fraud model's
#: customers want not to be flagged (0); a credit model's applicants want approval (1).
FAVOURABLE_BY_USE_CASE = {"fraud_detection": 0, "credit_scoring": 1}


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
    runner: Callable[[Any, str, GateContext], CheckResult] = _RUNNERS[check.kind]
    result = runner(check, name, ctx)
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


def _bounds(value: float, low: float | None, high: float | None) -> tuple[bool, str]:
    ok = (low is None or value >= low) and (high is None or value <= high)
    parts = ([f">= {low:g}"] if low is not None else []) + (
        [f"<= {high:g}"] if high is not None else []
    )
    return ok, " and ".join(parts)


def _metric(check: MetricCheck, name: str, ctx: GateContext) -> CheckResult:
    out = ctx.candidate
    value = metric_value(check.metric, ctx.y_true, out.score, out.pred, precision=check.precision)
    ok, limit = _bounds(value, check.min, check.max)
    verdict = "meets" if ok else "fails"
    return CheckResult(
        name,
        "metric",
        "passed" if ok else "failed",
        f"{check.metric} = {value:.4f} {verdict} {limit}",
        value,
        limit,
    )


def _champion(check: ChampionChallengerCheck, name: str, ctx: GateContext) -> CheckResult:
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


def _fairness(check: FairnessCheck, name: str, ctx: GateContext) -> CheckResult:
    from fairlearn.metrics import (
        MetricFrame,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    missing = [a for a in check.attributes if a not in ctx.data.columns]
    if missing:
        raise InvalidInputError(
            f"fairness: the evaluation data has no sensitive column {', '.join(missing)}",
            columns=",".join(missing),
        )
    pred = ctx.candidate.pred
    if not set(np.unique(pred)) <= {0, 1} or not set(np.unique(ctx.y_true)) <= {0, 1}:
        raise InvalidInputError("fairness checks need a binary classifier with 0/1 labels")
    favourable = check.favourable
    if favourable is None:
        favourable = FAVOURABLE_BY_USE_CASE.get(ctx.use_case or "", 1)
    fav = int(favourable)
    # fairlearn on the distinct (group, label, decision) cells with their row counts as
    # sample weights: the same numbers as on every row (each metric is a weighted count),
    # at the cost of a group-by instead of MetricFrame's per-row work (12 s at 1M rows).
    rows = ctx.data[check.attributes].astype(str).assign(_y=ctx.y_true, _p=pred)
    cells = (
        rows.groupby([*check.attributes, "_y", "_p"], observed=True).size().reset_index(name="_n")
    )
    weight = cells["_n"].to_numpy()
    sensitive = cells[check.attributes] if len(check.attributes) > 1 else cells[check.attributes[0]]
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "recall": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=cells["_y"].to_numpy(),
        y_pred=cells["_p"].to_numpy(),
        sensitive_features=sensitive,
        sample_params={
            m: {"sample_weight": weight}
            for m in ("selection_rate", "recall", "false_positive_rate")
        },
    )
    by_group = frame.by_group
    counts = cells.groupby(check.attributes, observed=True)["_n"].sum()
    table = by_group.reset_index()
    keys = [tuple(map(str, k)) if isinstance(k, tuple) else (str(k),) for k in by_group.index]
    table["group"] = [" / ".join(k) for k in keys]
    table["count"] = [int(counts.get(k if len(k) > 1 else k[0], 0)) for k in keys]
    table["favourable_rate"] = (
        by_group["selection_rate"].to_numpy()
        if fav == 1
        else 1 - by_group["selection_rate"].to_numpy()
    )
    problems: list[str] = []
    notes: list[str] = []
    small = table["count"] < check.min_group_size
    if small.any():
        notes.append(
            f"groups under {check.min_group_size} rows are shown but not judged: "
            + ", ".join(table.loc[small, "group"])
        )
    judged = table[~small]
    air_value: float | None = None
    if check.reference is not None:
        ref_rows = table[table["group"] == str(check.reference)]
        if ref_rows.empty:
            raise InvalidInputError(
                f"fairness: reference group {check.reference!r} does not occur in "
                f"{', '.join(check.attributes)} (groups: {', '.join(table['group'])})"
            )
        ref_rate = float(ref_rows["favourable_rate"].iloc[0])
        table["adverse_impact_ratio"] = (
            table["favourable_rate"] / ref_rate if ref_rate > 0 else np.nan
        )
        judged = table[~small]
        others = judged[judged["group"] != str(check.reference)]
        air_value = float(others["adverse_impact_ratio"].min()) if not others.empty else None
        if check.adverse_impact_ratio_min is not None and air_value is not None:
            low = others[others["adverse_impact_ratio"] < check.adverse_impact_ratio_min]
            for _, row in low.iterrows():
                problems.append(
                    f"adverse impact ratio of {row['group']} = {row['adverse_impact_ratio']:.3f} "
                    f"< {check.adverse_impact_ratio_min:g}"
                )
    rates = judged["favourable_rate"]
    dp_ratio = float(rates.min() / rates.max()) if len(rates) and rates.max() > 0 else float("nan")
    eod = float(
        equalized_odds_difference(
            cells["_y"].to_numpy(),
            cells["_p"].to_numpy(),
            sensitive_features=sensitive,
            sample_weight=weight,
        )
    )
    if (
        check.equalized_odds_difference_max is not None
        and eod > check.equalized_odds_difference_max
    ):
        problems.append(
            f"equalized odds difference {eod:.3f} > {check.equalized_odds_difference_max:g}"
        )
    if (
        check.demographic_parity_ratio_min is not None
        and dp_ratio < check.demographic_parity_ratio_min
    ):
        problems.append(
            f"demographic parity ratio {dp_ratio:.3f} < {check.demographic_parity_ratio_min:g}"
        )
    columns = [
        "group",
        "count",
        "selection_rate",
        "favourable_rate",
        "recall",
        "false_positive_rate",
    ]
    if "adverse_impact_ratio" in table:
        columns.append("adverse_impact_ratio")
    details = {
        "sensitive": check.attributes,
        "reference": check.reference,
        "favourable_outcome": fav,
        "threshold": ctx.candidate.threshold,
        "groups": table[columns].replace({np.nan: None}).to_dict(orient="records"),
        "adverse_impact_ratio_min": air_value,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": eod,
        "notes": [
            *notes,
            "adverse impact ratio: a screening signal (four-fifths rule), not a legal finding",
        ],
    }
    summary = (
        f"favourable outcome = prediction {fav}; "
        + (f"lowest adverse impact ratio {air_value:.3f}; " if air_value is not None else "")
        + f"fairlearn demographic parity ratio {dp_ratio:.3f}; equalized odds difference {eod:.3f}"
    )
    message = "; ".join(problems) if problems else summary
    return CheckResult(
        name,
        "fairness",
        "failed" if problems else "passed",
        message,
        air_value if air_value is not None else eod,
        _fair_limits(check),
        details,
    )


def _fair_limits(check: FairnessCheck) -> str:
    parts = []
    if check.adverse_impact_ratio_min is not None:
        parts.append(f"AIR >= {check.adverse_impact_ratio_min:g}")
    if check.equalized_odds_difference_max is not None:
        parts.append(f"EOD <= {check.equalized_odds_difference_max:g}")
    if check.demographic_parity_ratio_min is not None:
        parts.append(f"DP ratio >= {check.demographic_parity_ratio_min:g}")
    return ", ".join(parts)


def infer_schema(training: pd.DataFrame, columns: list[str], null_rate_slack: float) -> Any:
    """A pandera schema from training data: kinds, ranges, categories and null rates."""
    import pandera.pandas as pa

    spec: dict[str, Any] = {}
    for col in columns:
        values = training[col]
        null_limit = float(values.isna().mean()) + null_rate_slack
        checks = [
            pa.Check(
                lambda s, limit=null_limit: bool(s.isna().mean() <= limit),
                name=f"null_rate<={null_limit:.4f}",
                error=f"null rate above {null_limit:.4f}",
            )
        ]
        present = values.dropna()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            kind = "numeric"
            checks.append(
                pa.Check(
                    lambda s: pd.api.types.is_numeric_dtype(s), name="numeric", error="not numeric"
                )
            )
            if not present.empty:
                checks.append(
                    pa.Check.in_range(float(present.min()), float(present.max()), ignore_na=True)
                )
        else:
            kind = "categorical"
            levels = sorted(map(str, present.unique()))
            checks.append(
                pa.Check(
                    lambda s, ok=frozenset(levels): s.astype(str).isin(ok) | s.isna(),
                    name="known_category",
                    error="category not seen in training",
                )
            )
        spec[col] = pa.Column(checks=checks, nullable=True, required=True, title=kind)
    return pa.DataFrameSchema(spec, strict=False, name="training")


def _data_validation(check: DataValidationCheck, name: str, ctx: GateContext) -> CheckResult:
    import pandera.errors as pe

    training = ctx.need_reference("data_validation")
    columns = [c for c in ctx.features if c in training.columns]
    schema = infer_schema(training, columns, check.null_rate_slack)
    rows = len(ctx.data)
    failures: list[dict[str, Any]] = []
    try:
        schema.validate(ctx.data[columns], lazy=True)
    except pe.SchemaErrors as exc:
        cases = exc.failure_cases
        grouped = cases.groupby(["column", "check"], dropna=False)
        for (column, rule), part in grouped:
            bad_rows = int(part["index"].notna().sum()) if "index" in part else len(part)
            share = bad_rows / rows if bad_rows else 1.0
            examples = [str(v) for v in part["failure_case"].head(5)]
            failures.append(
                {
                    "column": str(column),
                    "check": str(rule),
                    "rows": bad_rows,
                    "share": share,
                    "examples": examples,
                }
            )
    blocking = [f for f in failures if f["share"] > check.max_failure_rate]
    rules = {col: [str(c.name) for c in schema.columns[col].checks] for col in columns}
    details = {
        "columns": len(columns),
        "failures": failures,
        "rules": rules,
        "max_failure_rate": check.max_failure_rate,
    }
    if blocking:
        worst = max(blocking, key=lambda f: f["share"])
        message = (
            f"{len(blocking)} rule(s) broken beyond {check.max_failure_rate:g} of rows; worst: "
            f"{worst['column']} {worst['check']} on {worst['share']:.2%} of rows "
            f"(e.g. {', '.join(worst['examples'][:3])})"
        )
        return CheckResult(
            name,
            "data_validation",
            "failed",
            message,
            worst["share"],
            f"share <= {check.max_failure_rate:g}",
            details,
        )
    note = f"; {len(failures)} rule(s) within tolerance" if failures else ""
    return CheckResult(
        name,
        "data_validation",
        "passed",
        f"{len(columns)} columns match the training schema{note}",
        0.0,
        f"share <= {check.max_failure_rate:g}",
        details,
    )


def _drift(check: DriftCheck, name: str, ctx: GateContext) -> CheckResult:
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


def _custom(check: CustomCheck, name: str, ctx: GateContext) -> CheckResult:
    module, _, attr = check.function.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot import custom check {check.function}: {exc}") from None
    outcome = fn(ctx, **check.params)
    if isinstance(outcome, bool | np.bool_):
        outcome = {"passed": bool(outcome)}
    if not isinstance(outcome, dict) or "passed" not in outcome:
        raise InvalidInputError(
            f"custom check {check.function} must return a bool or a dict with 'passed'"
        )
    ok = bool(outcome["passed"])
    value = outcome.get("value")
    return CheckResult(
        name,
        "custom",
        "passed" if ok else "failed",
        str(outcome.get("message") or ("passed" if ok else "failed")),
        float(value) if value is not None else None,
        "",
        {k: v for k, v in outcome.items() if k not in {"passed", "message", "value"}},
    )


def _federated(ctx: GateContext) -> dict[str, Any]:
    return dict((ctx.card.get("model_parameters") or {}).get("federated") or {})


def _privacy(check: PrivacyCheck, name: str, ctx: GateContext) -> CheckResult:
    limit = f"epsilon <= {check.max_epsilon:g} at delta <= {check.max_delta:g}"
    privacy = _federated(ctx).get("privacy")
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


def _silos(check: SilosCheck, name: str, ctx: GateContext) -> CheckResult:
    per_silo = _federated(ctx).get("per_silo") or {}
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


_RUNNERS: dict[str, Callable[[Any, str, GateContext], CheckResult]] = {
    "metric": _metric,
    "champion_challenger": _champion,
    "fairness": _fairness,
    "data_validation": _data_validation,
    "drift": _drift,
    "privacy": _privacy,
    "silos": _silos,
    "custom": _custom,
}
