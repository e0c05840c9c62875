"""The port gates need from a metadata store: keep reports per model version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from shipyard.core.errors import NotFoundError
from shipyard.gates.report import GateReport

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.gates.policy import GatePolicy


class GateReportStore(Protocol):
    """Gate reports, append-only."""

    def add_report(self, report: GateReport) -> GateReport:
        """Store a report; return it as stored (a server stamps who submitted it)."""
        ...

    def list_reports(self, model: str, version: int | None = None) -> list[GateReport]:
        """Reports of a model (or one version), newest first."""
        ...

    def get_report(self, report_id: str) -> GateReport:
        """One report; NotFoundError if unknown."""
        ...


class Gates(Protocol):
    """What surfaces ask of quality gates, in this process or through a server."""

    def evaluate(
        self,
        name: str,
        version: int | str,
        policy: GatePolicy | dict[str, Any],
        data: pd.DataFrame,
        *,
        reference: pd.DataFrame | None = None,
        actor: str | None = None,
        trusted: bool = False,
    ) -> GateReport:
        """Run every check of ``policy`` on ``data``; the report is stored on the version."""
        ...

    def reports(self, name: str, version: int | None = None) -> list[GateReport]:
        """Stored reports, newest first."""
        ...

    def latest(self, name: str, version: int, *, verified: bool = False) -> GateReport:
        """The newest report of one version (``verified``: one the store computed)."""
        ...


def newest_report(
    reports: list[GateReport], name: str, version: int, *, verified: bool
) -> GateReport:
    """The first of ``reports`` (newest first) that counts; NotFoundError when none does."""
    found = [r for r in reports if r.verified or not verified]
    if not found:
        kind = " the store computed (posted reports do not count)" if verified else ""
        raise NotFoundError(
            f"version {version} of {name!r} has no gate report{kind}; run shipyard gate check",
            model=name,
            version=version,
        )
    return found[0]
