"""What monitoring needs: the prediction log to read, and stores for labels and results."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from shipyard.monitoring.models import Label


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

    def history(self, monitor: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Results, oldest window first."""
        ...

    def latest(self) -> list[dict[str, Any]]:
        """The newest window's result of every monitor."""
        ...
