"""custom: ``function(context, **params) -> bool | dict``, a function named ``module:function``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from shipyard.core.errors import InvalidInputError
from shipyard.gates.kinds._base import CheckSpec
from shipyard.gates.report import CheckResult

if TYPE_CHECKING:
    from shipyard.gates.checks import GateContext


class CustomCheck(CheckSpec):
    """``function(context) -> bool | dict``: a Python function named ``module:function``."""

    kind: Literal["custom"] = "custom"
    order: ClassVar[int] = 90
    function: str = Field(pattern=r"^[\w.]+:\w+$")
    params: dict[str, Any] = Field(default_factory=dict)

    def label(self) -> str:
        """The check's display name when it has none."""
        return f"custom:{self.function}"

    def run(self, name: str, ctx: GateContext) -> CheckResult:
        """Evaluate the check on the gate's data."""
        return _custom(self, name, ctx)


def _custom(check: CustomCheck, name: str, ctx: GateContext) -> CheckResult:
    import numpy as np

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


CHECK = CustomCheck
