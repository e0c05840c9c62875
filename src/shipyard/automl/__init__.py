"""AutoML inside the governed lifecycle: time-budgeted model search on Optuna.

::

    import shipyard.automl

    result = shipyard.automl.search(X, y, task="binary", metric="pr_auc", time_budget=60,
                                    constraints={"max_predict_ms": 1}, register="fraud")
    result.leaderboard, result.model, result.model_version

Every trial is a child run of the search's run, the study is an Optuna study in the store's
database, and the winner is registered as a candidate with its search report in the model
card. The ``automl`` extra brings Optuna, LightGBM and XGBoost.
"""

from __future__ import annotations

from shipyard.automl.metrics import DEFAULT_METRIC, metric_names
from shipyard.automl.search import REPORT_ARTIFACT, SearchResult, search
from shipyard.automl.space import FAMILIES

__all__ = [
    "DEFAULT_METRIC",
    "FAMILIES",
    "REPORT_ARTIFACT",
    "SearchResult",
    "metric_names",
    "search",
]
