"""GateReport: what was checked, on which data, by whom, and each check's outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from shipyard.core.jsonsafe import finite

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``details`` holds its tables (groups, columns, interval)."""

    name: str
    kind: str
    status: Status
    message: str
    value: float | None = None
    threshold: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """Whether this check blocks promotion."""
        return self.status == "failed"


@dataclass(frozen=True)
class GateReport:
    """The evaluation of one model version against one policy on one data set."""

    id: str
    model: str
    version: int
    passed: bool
    policy: dict[str, Any]
    policy_digest: str
    data_digest: str
    rows: int
    checks: list[CheckResult]
    created_by: str
    created_at: int
    seconds: float
    #: True only when the service holding the store computed the report itself, from the
    #: version's own files: promotion counts nothing else. A posted report never is.
    verified: bool = False

    @property
    def failed_checks(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if c.failed]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = finite(asdict(self))
        data["uri"] = f"models:/{self.model}/{self.version}"
        return data  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateReport:
        """From ``to_dict`` output (stored reports)."""
        fields = {k: v for k, v in data.items() if k != "uri"}
        fields["checks"] = [CheckResult(**c) for c in data["checks"]]
        return cls(**fields)
