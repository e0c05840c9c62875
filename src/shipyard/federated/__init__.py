"""Federated learning across data silos on Flower, inside the governed lifecycle.

::

    import shipyard.federated as fl

    job = fl.load_config("job.yaml")            # strategy, rounds, DP, SecAgg+
    result = fl.train({"lisbon": "a.parquet", "porto": "b.parquet"}, job, register="fraud")
    result.global_metrics, result.privacy, result.model_version

Each silo runs Flower's ClientApp on its own rows; the coordinator runs Flower's ServerApp
(FedAvg or FedProx, Flower's central DP wrappers and SecAgg+). The same apps run in one
process (:func:`train`) or on a Flower deployment, SuperLink and SuperNodes
(:func:`shipyard.federated.deployment.run`). Rounds are child runs; the global model is a
candidate whose card carries each silo's data fingerprint (a hash and a profile, never
rows), per-silo evaluation and the privacy spent. The ``federated`` extra brings Flower.
"""

from __future__ import annotations

import os

# Flower's telemetry and update checks read these when Flower is first imported: off in
# every process that uses this package (a user who sets them explicitly is left alone).
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")

from shipyard.federated.config import (
    DPConfig,
    FederatedConfig,
    SecAggConfig,
    load_config,
)
from shipyard.federated.service import FederatedResult, train

__all__ = [
    "DPConfig",
    "FederatedConfig",
    "FederatedResult",
    "SecAggConfig",
    "load_config",
    "train",
]
