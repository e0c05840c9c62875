"""The live view of a search: trials so far, the best score and the budget left (Rich)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from shipyard.automl.budget import Budget
from shipyard.automl.metrics import Metric


class SearchProgress:
    """A Rich progress bar over the budget; silent when disabled (``--json``, tests)."""

    def __init__(self, budget: Budget, metric: Metric, *, enabled: bool) -> None:
        self.budget = budget
        self.metric = metric
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SearchProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]automl[/bold]"),
                BarColumn(),
                TextColumn("{task.fields[trials]} trials"),
                TextColumn("best {task.fields[best]}"),
                TextColumn("{task.fields[left]}"),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "search", total=self.budget.seconds, trials=0, best="-", left=""
            )
        return self

    def update(self, study: Any, note: str | None = None) -> None:
        """Refresh from the study (after each trial, or while Ray workers run)."""
        if self._progress is None:
            return
        from shipyard.automl.trials import best_trial, started

        best = best_trial(study)
        shown = (
            f"{self.metric.name} {best.value:.4f} ({best.params['estimator']})"
            if best is not None
            else "-"
        )
        left = note or f"{max(self.budget.left(), 0.0):.1f} s left"
        self._progress.update(
            self._task,
            completed=min(self.budget.elapsed(), self.budget.seconds),
            trials=started(study),
            best=shown,
            left=left,
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
