"""What monitoring needs: the prediction log to read, and stores for labels and results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.monitoring.models import FeedbackResult, Label

if TYPE_CHECKING:
    from shipyard.monitoring.alerts import Alert
    from shipyard.monitoring.spec import MonitorSpec

#: Starts a retraining pipeline ("module:pipeline") for a firing alert; returns the run id.
Retrainer = Callable[[str, "Alert"], str]


class PredictionSource(Protocol):
    """Logged predictions of a deployment."""

    def predictions(
        self,
        deployment: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
    ) -> Any:
        """Rows as a pandas DataFrame (request_id, row, timestamp, version, input.*, output.*)."""
        ...

    def failures(
        self, deployment: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Any:
        """Failed requests as a DataFrame (request_id, timestamp, version, role, status)."""
        ...


class FeedbackStore(Protocol):
    """Ground-truth labels, one per predicted row, never overwritten."""

    def add_labels(self, deployment: str, labels: list[Label]) -> list[Label]:
        """Insert labels; return those already stored (left untouched)."""
        ...

    def labels(self, deployment: str, request_ids: list[str] | None = None) -> list[Label]:
        """Stored labels, optionally for some requests only."""
        ...


class MonitorResultStore(Protocol):
    """One result per monitor and window."""

    def save(
        self,
        monitor: str,
        start: int,
        end: int,
        status: str,
        rows: int,
        result: dict[str, Any],
        evaluated_at: int,
    ) -> None:
        """Store a window's result, replacing an earlier evaluation of the same window."""
        ...

    def history(
        self, monitor: str, limit: int | None = None, *, judged: bool = False
    ) -> list[dict[str, Any]]:
        """Results, oldest window first: the newest ``limit`` of them, and with ``judged``
        only windows that had traffic."""
        ...

    def latest(self) -> list[dict[str, Any]]:
        """The newest window's result of every monitor."""
        ...


class Monitoring(Protocol):
    """What surfaces ask of monitoring, served in this process or by a Shipyard server."""

    #: Set by a surface that can run pipelines (CLI, SDK) to retrain on a firing alert.
    retrain: Retrainer | None

    def run(self, spec: MonitorSpec, start: datetime, end: datetime) -> dict[str, Any]:
        """Evaluate one window, store its result (replacing an earlier one), raise alerts."""
        ...

    def run_latest(self, spec: MonitorSpec, until: datetime) -> dict[str, Any]:
        """Evaluate the last ``window.rows`` predictions before ``until``."""
        ...

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """A monitor's stored results (the newest ``limit``), oldest window first;
        NotFoundError when none."""
        ...

    def latest(self) -> list[dict[str, Any]]:
        """The newest window's result of every monitor."""
        ...

    def list_alerts(self, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        """Alerts, newest first."""
        ...

    def redeliver(self, alert_id: str, spec: MonitorSpec) -> Alert:
        """Send an alert's undelivered notifications again, through ``spec``'s notifiers."""
        ...


class Feedback(Protocol):
    """Delayed labels as surfaces send them, to this store or through a server."""

    def submit(self, deployment: str, items: Iterable[Mapping[str, Any]]) -> FeedbackResult:
        """Store labels keyed by request id (and row); say what was refused and why."""
        ...
