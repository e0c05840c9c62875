"""What serving needs from a prediction log: a non-blocking ``submit``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One request's inputs and outputs, as the model saw and produced them."""

    deployment: str
    model: str
    version: str
    role: str
    request_id: str
    timestamp_ms: int
    latency_seconds: float
    inputs: dict[str, np.ndarray[Any, Any]]
    outputs: dict[str, np.ndarray[Any, Any]]
    rows: int
    status: int = 200  # a failed request: its HTTP code, no rows (kept apart from predictions)


class PredictionSink(Protocol):
    """Takes records without blocking; counts what it cannot keep."""

    def submit(self, record: PredictionRecord) -> bool:
        """Queue a record; False (and counted) when it had to be dropped."""
        ...

    def close(self) -> None:
        """Write what is queued and release files."""
        ...
