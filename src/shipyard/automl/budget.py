"""Wall-clock budgets with FLAML's semantics: stop when the time is up, keep the best so far.

A budget is an absolute deadline on ``time.time()`` (not a monotonic clock) so that Ray
workers on the same machine, or on machines with synchronised clocks, share it. Trials
check it between boosting rounds, tree chunks and folds; an estimator that cannot be
interrupted (a linear model) is the only unit of work that can run past it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shipyard.core.errors import ShipyardError


class TrialInterruptedError(ShipyardError):
    """The budget ran out while a trial was training; what it learnt so far is dropped."""


@dataclass(frozen=True)
class Budget:
    """``seconds`` of wall clock from ``started`` (``time.time()``)."""

    started: float
    seconds: float

    @classmethod
    def start(cls, seconds: float) -> Budget:
        """A budget that starts now."""
        return cls(time.time(), float(seconds))

    @property
    def deadline(self) -> float:
        """When the budget ends."""
        return self.started + self.seconds

    def elapsed(self) -> float:
        """Seconds used so far."""
        return time.time() - self.started

    def left(self, reserve: float = 0.0) -> float:
        """Seconds left before the deadline less ``reserve`` (negative once past it)."""
        return self.deadline - reserve - time.time()


@dataclass
class StopAt:
    """A point in time work must stop at; estimators poll it between units of work."""

    at: float

    def __call__(self) -> bool:
        return time.time() >= self.at

    def check(self) -> None:
        """Raise once the time has come.

        Raises:
            TrialInterruptedError: the time has come.
        """
        if self():
            raise TrialInterruptedError("the time budget ran out during this trial")
