"""Monitoring records: ground-truth labels that arrive after the prediction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Label:
    """The true outcome of one predicted row, joined later by its request id."""

    request_id: str
    label: bool | int | float | str
    row: int = 0
    received_at: int = 0
    actor: str = ""


@dataclass(frozen=True)
class Rejected:
    """A label that was not stored, and why."""

    request_id: str
    row: int
    reason: str


@dataclass(frozen=True)
class FeedbackResult:
    """What a feedback call stored and what it refused."""

    deployment: str
    accepted: int
    rejected: list[Rejected] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "deployment": self.deployment,
            "accepted": self.accepted,
            "rejected": [r.__dict__ for r in self.rejected],
        }
