"""Gate policies: YAML (or the same as Python objects) naming the checks and thresholds.

```yaml
label: is_fraud
threshold: 0.5            # decision threshold on the positive-class score, or
# flag_rate: 0.02          # flag the top 2% of scores (an alert budget), per model
checks:
  - metric: roc_auc
    min: 0.85
  - champion_challenger: {metric: roc_auc, max_drop: 0.01, confidence: 0.95}
  - fairness: {sensitive: age_band, reference: "30-49", adverse_impact_ratio_min: 0.8}
  - data_validation: {schema: training}
  - drift: {reference: training, method: psi, max: 0.2}
  - custom: {function: "my_checks:no_negative_scores"}
```
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.core.errors import InvalidInputError
from shipyard.gates.kinds import METRICS, CheckSpec, kinds

__all__ = ["KINDS", "METRICS", "CheckSpec", "GatePolicy", "load_policy", "parse_policy"]

if TYPE_CHECKING:
    Check = CheckSpec
else:
    # One discriminated union of every registered kind (shipyard.gates.kinds).
    Check = Annotated[Union[tuple(kinds().values())], Field(discriminator="kind")]  # noqa: UP007
#: Every check kind a policy may name, in listing order.
KINDS: tuple[str, ...] = tuple(kinds())


class GatePolicy(BaseModel):
    """The checks a version must pass, on evaluation data with a ``label`` column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    threshold: float = Field(default=0.5, gt=0, lt=1)
    # Fraud teams decide by alert budget: flag this share of the evaluation rows (per model,
    # at its own score quantile) instead of a fixed score threshold.
    flag_rate: float | None = Field(default=None, gt=0, lt=1)
    checks: list[Check] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: Any) -> Any:
        """Accept the YAML shapes: ``{metric: auc, min: ..}`` and ``{fairness: {...}}``."""
        if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
            return data
        checks = []
        for i, item in enumerate(data["checks"]):
            if not isinstance(item, dict):
                raise ValueError(f"checks[{i}] must be a mapping, got {type(item).__name__}")
            if "kind" in item:
                checks.append(item)
            elif "metric" in item:
                checks.append({"kind": "metric", **item})
            elif len(item) == 1:
                ((kind, params),) = item.items()
                if kind not in KINDS:
                    raise ValueError(
                        f"checks[{i}]: unknown check {kind!r}; known: {', '.join(KINDS)}"
                    )
                checks.append({"kind": kind, **(params or {})})
            else:
                raise ValueError(f"checks[{i}]: one check per item, got keys {sorted(item)}")
        return {**data, "checks": checks}

    @property
    def digest(self) -> str:
        """sha256 of the policy's canonical JSON: which rules a report applied."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def check_name(self, index: int) -> str:
        """A check's display name: its own, or kind plus its main parameter."""
        check = self.checks[index]
        return check.name or check.label()


def parse_policy(data: object) -> GatePolicy:
    """A policy from a dict (parsed YAML), with one clear line on the first problem."""
    if isinstance(data, GatePolicy):
        return data
    try:
        return GatePolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if not str(p).startswith("function-"))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInputError(f"gate policy: {where + ': ' if where else ''}{msg}") from None


def load_policy(path: str | Path) -> GatePolicy:
    """A policy from a YAML file."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise InvalidInputError(f"cannot read gate policy {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"gate policy {file} is not a UTF-8 text (YAML) file") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"gate policy {file} is not valid YAML: {exc}") from None
    return parse_policy(data)
