"""data_validation: the evaluation data against a schema inferred from the training data
(pandera)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from shipyard.gates.kinds._base import CheckSpec
from shipyard.gates.report import CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.gates.checks import GateContext


class DataValidationCheck(CheckSpec):
    """The evaluation data against a schema inferred from the training data (pandera)."""

    kind: Literal["data_validation"] = "data_validation"
    order: ClassVar[int] = 40
    schema_: Literal["training"] = Field(default="training", alias="schema")
    max_failure_rate: float = Field(default=0.01, ge=0, le=1)
    null_rate_slack: float = Field(default=0.01, ge=0, le=1)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check on the gate's data."""
        return _data_validation(self, name, ctx)


def infer_schema(training: pd.DataFrame, columns: list[str], null_rate_slack: float) -> Any:
    import pandas as pd

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


CHECK = DataValidationCheck
